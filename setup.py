"""Build the Cython kernels in fastprod/_ext/ (everything else lives in pyproject.toml)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

EXT_DIR = "fastprod/_ext"
COMPILE_ARGS = ["-O3", "-fno-strict-aliasing"]
MODULES = ["crc32c", "murmur2", "varint", "batch", "accumulate", "ring", "shard", "lines"]

extensions = [
    Extension(
        f"fastprod._ext.{name}",
        [f"{EXT_DIR}/{name}.pyx"],
        include_dirs=[EXT_DIR],
        extra_compile_args=COMPILE_ARGS,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        # binding=False: methods and functions are plain builtins, cheaper to call once
        # per record than Cython's own function objects
        # embedsignature (clinic format): help() and inspect.signature() show the
        # arguments of the C methods that stand in for Producer.send and friends
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True,
                             "binding": False, "embedsignature": True,
                             "embedsignature.format": "clinic"},
    )
)

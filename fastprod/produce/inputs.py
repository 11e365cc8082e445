"""Where ``fastprod produce`` reads from: stdin, files, globs and directories, with
gzip / zstd / lz4 / bz2 input decompressed transparently.

Every path is expanded and checked (exists, is readable) before anything is sent, so a
typo in the last of ten files fails the run up front instead of half-way through.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

STDIN = "-"

# magic bytes first (a .log that is really gzip still works), the extension second
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"BZh", "bz2"),
)
_EXTENSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd",
               ".lz4": "lz4", ".bz2": "bz2"}


class InputError(Exception):
    """An input that cannot be read: missing, unreadable, a bad compressed stream."""


@dataclass(frozen=True)
class Source:
    """One input: a file path or stdin, with its size on disk (None when unknown)."""

    name: str  # the path as shown in messages; "-" for stdin
    size: int | None

    @property
    def is_stdin(self) -> bool:
        return self.name == STDIN


def _has_magic(pattern: str) -> bool:
    return glob.has_magic(pattern)  # type: ignore[attr-defined]


def expand(paths: Sequence[str]) -> list[Source]:
    """Turn the command's FILE arguments into sources, in order: no argument or "-" is
    stdin; a glob expands to its matches in sorted order; a directory to the regular
    files below it in sorted order (hidden ones too: the user named the directory).
    InputError for a path that does not exist, a glob matching nothing, an empty
    directory or an unreadable file."""
    if not paths:
        return [Source(STDIN, None)]
    out: list[Source] = []
    for arg in paths:
        if arg == STDIN:
            out.append(Source(STDIN, None))
            continue
        if _has_magic(arg) and not os.path.exists(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise InputError(f"{arg}: no file matches this pattern")
        else:
            matches = [arg]
        for path in matches:
            out.extend(_expand_one(path))
    return out


def _expand_one(path: str) -> list[Source]:
    if os.path.isdir(path):
        files = []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files.extend(os.path.join(root, n) for n in sorted(names))
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise InputError(f"{path}: the directory holds no file")
        return [_checked(f) for f in files]
    return [_checked(path)]


def _checked(path: str) -> Source:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (not readable)")
    return Source(path, st.st_size if os.path.isfile(path) else None)


class CountingReader(io.RawIOBase):
    """Counts the bytes read from the file itself (compressed bytes for compressed
    input), which is what the ETA compares with the size on disk."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = self._raw.readinto(b)  # type: ignore[attr-defined]
        if n:
            self.count += n
        return n or 0

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _detect(head: bytes, name: str) -> str | None:
    for magic, codec in _MAGIC:
        if head.startswith(magic):
            return codec
    # no known magic: trust the extension, so a file named .gz that is not gzip fails
    # with gzip's own complaint instead of being sent as compressed bytes
    return _EXTENSIONS.get(os.path.splitext(name)[1].lower())


def open_source(source: Source) -> tuple[BinaryIO, CountingReader]:
    """A binary stream of the decompressed content, and the counter of raw bytes read.
    InputError if the file cannot be opened or its compression module is missing."""
    if source.is_stdin:
        # the unbuffered file: a buffered one fills its whole buffer before returning,
        # which would hold back the records of a slow pipe
        raw: BinaryIO = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
    else:
        try:
            raw = open(source.name, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as e:
            raise InputError(f"{source.name}: {e.strerror or e}") from None
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    head = buffered.peek(4)[:4]
    codec = _detect(head, source.name)
    if codec is None:
        return buffered, counter
    return _decompressing(codec, buffered, source.name), counter


def _decompressing(codec: str, stream: BinaryIO, name: str) -> BinaryIO:
    if codec == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if codec == "bz2":
        return bz2.BZ2File(stream, mode="rb")  # type: ignore[return-value]
    if codec == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True,
                                                            closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[arg-type]
    if codec == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameFile(stream, mode="rb")  # type: ignore[return-value]
    raise InputError(f"{name}: unknown compression {codec}")


DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError)
"""What a corrupt or truncated compressed stream raises while it is read (gzip's
BadGzipFile is an OSError, bz2 and lz4 raise OSError/EOFError, zstandard a ZstdError,
which is a subclass of none of these: the reader catches it by module below)."""


def is_decompress_error(exc: BaseException) -> bool:
    if isinstance(exc, DECOMPRESS_ERRORS):
        return True
    return type(exc).__module__.startswith("zstandard") or type(exc).__name__ == "ZstdError"

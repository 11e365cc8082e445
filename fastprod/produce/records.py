"""What the format readers hand the sender: chunks of records, and the count of
malformed input (reported with file and line, the first few in full)."""

from __future__ import annotations

from dataclasses import dataclass, field

Header = tuple[str, "bytes | None"]

MAX_SHOWN = 5  # malformed records shown with file:line before the rest are only counted


@dataclass
class Chunk:
    """Consecutive records of one source. ``keys``, ``timestamps`` and ``headers`` are
    None when no record of the chunk has one (the common case, and the fast path)."""

    source: str
    values: list[bytes]
    keys: list[bytes | None] | None = None
    timestamps: list[int | None] | None = None
    headers: list[list[Header] | None] | None = None
    lines: list[int] | None = None  # line of each record; None: first_line + index
    first_line: int = 1

    def __len__(self) -> int:
        return len(self.values)

    def line_of(self, index: int) -> int:
        return self.lines[index] if self.lines is not None else self.first_line + index

    def nbytes(self) -> int:
        total = sum(map(len, self.values))
        if self.keys is not None:
            total += sum(len(k) for k in self.keys if k is not None)
        return total


@dataclass
class Malformed:
    """Malformed input records: counted, the first few kept with their place and
    reason. With ``strict`` the first one sets ``stop``: the reader yields the records
    it parsed before it (they are still sent) and reads no further."""

    strict: bool = False
    count: int = 0
    shown: list[str] = field(default_factory=list)
    stop: str | None = None

    def add(self, source: str, line: int, reason: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append(f"{source}:{line}: {reason}")
        if self.strict and self.stop is None:
            self.stop = f"{source}:{line}: {reason} (--strict stops at the first malformed record)"

"""The input formats of ``fastprod produce``: each reader turns one decompressed binary
stream into ``Chunk``s of records, and reports malformed ones to a ``Malformed``.

- ``lines``: records split on a delimiter (default newline), optionally ``key<K>value``;
- ``jsonl``: one JSON document per line; the value is the line unless ``value_field``
  picks a part; key, timestamp and headers may come from fields;
- ``csv`` / ``tsv``: a header row (unless ``header=False``), the key from a column, the
  value the raw row or, with ``value_as="json"``, an object of the row;
- ``file``: the whole stream is one record.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastprod._ext.lines import json_keys, split_key_value

from .records import Chunk, Header, Malformed

FORMATS = ("lines", "jsonl", "csv", "tsv", "file")
BLOCK = 1 << 20  # bytes read per call: about 10,000 records of 100 bytes per chunk
CSV_CHUNK = 5_000  # rows per chunk (csv parses row by row anyway)


class UsageError(ValueError):
    """An option that does not fit the input (a --key-column the header lacks, ...)."""


@dataclass
class ReadOptions:
    format: str = "lines"
    delimiter: bytes = b"\n"
    key_delimiter: bytes | None = None
    key_field: str | None = None  # jsonl: a top-level name, or a JSON pointer "/a/b"
    value_field: str | None = None
    timestamp_field: str | None = None
    headers_field: str | None = None
    key_column: str | None = None  # csv/tsv: a header name or a 0-based index
    header: bool = True  # csv/tsv: the first row names the columns
    value_as: str = "raw"  # csv/tsv: raw | json

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown --format {self.format!r}; one of {', '.join(FORMATS)}")
        if not self.delimiter:
            raise UsageError("--delimiter must not be empty")
        if self.key_delimiter is not None and not self.key_delimiter:
            raise UsageError("-K (key delimiter) must not be empty")
        jsonl_only = {"--key-field": self.key_field, "--value-field": self.value_field,
                      "--timestamp-field": self.timestamp_field,
                      "--headers-field": self.headers_field}
        for name, value in jsonl_only.items():
            if value is not None and self.format != "jsonl":
                raise UsageError(f"{name} is for --format jsonl, not {self.format}")
        if self.key_column is not None and self.format not in ("csv", "tsv"):
            raise UsageError(f"--key-column is for --format csv/tsv, not {self.format}")
        if self.value_as not in ("raw", "json"):
            raise UsageError(f"--value-as must be raw or json, not {self.value_as!r}")
        if self.value_as != "raw" and self.format not in ("csv", "tsv"):
            raise UsageError(f"--value-as is for --format csv/tsv, not {self.format}")
        if self.key_delimiter is not None and self.format != "lines":
            raise UsageError(f"-K is for --format lines, not {self.format}")
        for name in ("key_field", "value_field", "timestamp_field", "headers_field"):
            spec = getattr(self, name)
            if spec is not None:
                compile_field(spec)  # a bad pointer fails here, before anything is sent


def reader_for(opts: ReadOptions) -> Callable[[BinaryIO, str, Malformed], Iterator[Chunk]]:
    """The function that reads one stream in ``opts.format``."""
    if opts.format == "lines":
        return lambda s, name, bad: read_lines(s, name, opts.delimiter, opts.key_delimiter)
    if opts.format == "jsonl":
        return lambda s, name, bad: read_jsonl(s, name, bad, opts)
    if opts.format in ("csv", "tsv"):
        return lambda s, name, bad: read_csv(s, name, bad, opts)
    return lambda s, name, bad: read_file(s, name)


# ---- lines ------------------------------------------------------------------------------------


def split_blocks(stream: BinaryIO, delimiter: bytes) -> Iterator[list[bytes]]:
    """Lists of records split on ``delimiter``, a block at a time; a last record without
    a trailing delimiter is kept, an empty tail after the final delimiter is not."""
    tail = b""
    # read1: whatever is there, so records from a slow pipe (tail -f) go out as they come
    read = getattr(stream, "read1", stream.read)
    while True:
        block = read(BLOCK)
        if not block:
            break
        parts = (tail + block).split(delimiter) if tail else block.split(delimiter)
        tail = parts.pop()
        if parts:
            yield parts
    if tail:
        yield [tail]


def read_lines(stream: BinaryIO, name: str, delimiter: bytes,
               key_delimiter: bytes | None) -> Iterator[Chunk]:
    line = 1
    for parts in split_blocks(stream, delimiter):
        if key_delimiter is None:
            chunk = Chunk(name, parts, first_line=line)
        else:  # as kcat: a line without the delimiter is all value, with no key
            keys, values = split_key_value(parts, key_delimiter)
            chunk = Chunk(name, values, keys, first_line=line)
        line += len(parts)
        yield chunk


# ---- jsonl ------------------------------------------------------------------------------------

_MISSING = object()


def compile_field(spec: str) -> Callable[[Any], Any]:
    """A getter for a field: a top-level name (``id``), or a JSON pointer (RFC 6901,
    ``/user/id``, ``/items/0``). The getter returns _MISSING when the field is absent."""
    if not spec:
        raise UsageError("a field name must not be empty")
    if not spec.startswith("/"):
        def top(doc: Any, name: str = spec) -> Any:
            return doc.get(name, _MISSING) if type(doc) is dict else _MISSING
        return top
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in spec[1:].split("/")]

    def pointer(doc: Any) -> Any:
        for token in tokens:
            if type(doc) is dict:
                doc = doc.get(token, _MISSING)
            elif type(doc) is list and token.isdigit() and int(token) < len(doc):
                doc = doc[int(token)]
            else:
                return _MISSING
            if doc is _MISSING:
                return _MISSING
        return doc
    return pointer


def json_bytes(value: Any) -> bytes | None:
    """A field as record bytes: a string as its UTF-8, null as None, anything else as
    compact JSON (a number key 42 becomes b"42")."""
    if value is None:
        return None
    if type(value) is str:
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_timestamp(value: Any) -> int:
    """Milliseconds since the epoch from an integer/float (ms), a string of digits, or
    an ISO 8601 string (no zone: UTC). ValueError says why not."""
    if isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is not a number or an ISO 8601 string")
    if isinstance(value, (int, float)):
        ms = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            ms = int(text)
        else:
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            try:
                moment = _dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"timestamp {value!r} is not milliseconds or ISO 8601") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_dt.timezone.utc)
            ms = int(moment.timestamp() * 1000)
    else:
        raise ValueError(f"timestamp {value!r} is not a number or an ISO 8601 string")
    if ms < 0:
        raise ValueError(f"timestamp {value!r} is before 1970")
    return ms


def parse_headers(value: Any) -> list[Header]:
    """Headers from an object ({"name": "value"}) or a list of [name, value] pairs."""
    if type(value) is dict:
        items = list(value.items())
    elif type(value) is list and all(type(p) is list and len(p) == 2 for p in value):
        items = [(p[0], p[1]) for p in value]
    else:
        raise ValueError("headers must be an object or a list of [name, value] pairs")
    out: list[Header] = []
    for name, v in items:
        if type(name) is not str:
            raise ValueError(f"header name {name!r} is not a string")
        out.append((name, json_bytes(v)))
    return out


def read_jsonl(stream: BinaryIO, name: str, bad: Malformed, opts: ReadOptions) -> Iterator[Chunk]:
    if (opts.value_field is None and opts.timestamp_field is None and opts.headers_field is None
            and (opts.key_field is None or not opts.key_field.startswith("/"))):
        return _read_jsonl_fast(stream, name, bad, opts)
    return _read_jsonl(stream, name, bad, opts)


def _read_jsonl_fast(stream: BinaryIO, name: str, bad: Malformed,
                     opts: ReadOptions) -> Iterator[Chunk]:
    """The value is the line and the key at most a top-level field: the C kernel
    validates every line and takes the key; the lines it leaves go through json.loads
    exactly as in _read_jsonl."""
    key_of = compile_field(opts.key_field) if opts.key_field else None
    line = 1
    for parts in split_blocks(stream, b"\n"):
        keys, left = json_keys(parts, opts.key_field)
        first, line = line, line + len(parts)
        if not left:
            yield Chunk(name, parts, keys, first_line=first)
            continue
        drop: set[int] = set()
        end = len(parts)  # --strict: records from the malformed one on are not sent
        for i in left:
            raw = parts[i]
            if not raw.strip():
                drop.add(i)
                continue
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError) as e:
                drop.add(i)
                bad.add(name, first + i, _json_error(e))
            else:
                if key_of is None:
                    continue
                k = key_of(doc)
                if k is _MISSING:
                    drop.add(i)
                    bad.add(name, first + i, f"no key field {opts.key_field}")
                else:
                    keys[i] = json_bytes(k)  # type: ignore[index]
            if bad.stop:
                end = i
                break
        kept = [i for i in range(end) if i not in drop]
        if kept:
            yield Chunk(name, [parts[i] for i in kept],
                        None if keys is None else [keys[i] for i in kept],
                        lines=[first + i for i in kept])
        if bad.stop:
            return


def _json_error(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {getattr(e, 'msg', e)}" + (
        f" at column {e.colno}" if hasattr(e, "colno") else "")


def _read_jsonl(stream: BinaryIO, name: str, bad: Malformed, opts: ReadOptions) -> Iterator[Chunk]:
    key_of = compile_field(opts.key_field) if opts.key_field else None
    value_of = compile_field(opts.value_field) if opts.value_field else None
    ts_of = compile_field(opts.timestamp_field) if opts.timestamp_field else None
    headers_of = compile_field(opts.headers_field) if opts.headers_field else None
    loads = json.loads
    line = 0
    for parts in split_blocks(stream, b"\n"):
        values: list[bytes] = []
        keys: list[bytes | None] | None = [] if key_of else None
        stamps: list[int | None] | None = [] if ts_of else None
        heads: list[list[Header] | None] | None = [] if headers_of else None
        lines: list[int] = []
        for raw in parts:
            line += 1
            if not raw.strip():
                continue  # a blank line holds no record
            try:
                doc = loads(raw)
            except (ValueError, RecursionError) as e:  # bad JSON, bytes that are not UTF-8
                bad.add(name, line, _json_error(e))
                if bad.stop:
                    break
                continue
            try:
                fields = _pick(doc, key_of, value_of, ts_of, headers_of, opts)
            except ValueError as e:
                bad.add(name, line, str(e))
                if bad.stop:
                    break
                continue
            key, value, stamp, head = fields
            values.append(raw if value is _MISSING else value)  # type: ignore[arg-type]
            if keys is not None:
                keys.append(key)
            if stamps is not None:
                stamps.append(stamp)
            if heads is not None:
                heads.append(head)
            lines.append(line)
        if values:
            yield Chunk(name, values, keys, stamps, heads, lines)
        if bad.stop:
            return


def _pick(doc, key_of, value_of, ts_of, headers_of, opts: ReadOptions):
    key = stamp = head = None
    value: Any = _MISSING
    if key_of is not None:
        k = key_of(doc)
        if k is _MISSING:
            raise ValueError(f"no key field {opts.key_field}")
        key = json_bytes(k)
    if value_of is not None:
        v = value_of(doc)
        if v is _MISSING:
            raise ValueError(f"no value field {opts.value_field}")
        value = json_bytes(v)
        if value is None:
            value = b"null"
    if ts_of is not None:
        t = ts_of(doc)
        if t is _MISSING:
            raise ValueError(f"no timestamp field {opts.timestamp_field}")
        stamp = parse_timestamp(t)
    if headers_of is not None:
        h = headers_of(doc)
        if h is not _MISSING and h is not None:
            head = parse_headers(h)
    return key, value, stamp, head


# ---- csv / tsv --------------------------------------------------------------------------------


class _RawLines:
    """Feeds csv.reader line by line and keeps the lines of the current row, so the
    record value can be the row exactly as it was in the file."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self.taken: list[str] = []

    def __iter__(self) -> "_RawLines":
        return self

    def __next__(self) -> str:
        line = self._text.readline()
        if not line:
            raise StopIteration
        self.taken.append(line)
        return line

    def row_text(self) -> str:
        text = "".join(self.taken)
        self.taken.clear()
        return text.rstrip("\r\n")


def _column_index(spec: str, columns: list[str] | None, name: str) -> int:
    if columns is not None and spec in columns:
        return columns.index(spec)
    if spec.isdigit():
        return int(spec)
    shown = ", ".join(columns) if columns else "(no header row)"
    raise UsageError(f"{name}: --key-column {spec!r} is not a column; the columns are {shown}")


def read_csv(stream: BinaryIO, name: str, bad: Malformed, opts: ReadOptions) -> Iterator[Chunk]:
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    raw = _RawLines(text)
    if opts.format == "tsv":
        rows = csv.reader(raw, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
    else:
        rows = csv.reader(raw, strict=True)
    columns: list[str] | None = None
    key_index: int | None = None
    width: int | None = None
    values: list[bytes] = []
    keys: list[bytes | None] | None = [] if opts.key_column is not None else None
    lines: list[int] = []
    as_json = opts.value_as == "json"
    while True:
        start = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as e:
            raw.row_text()
            bad.add(name, start, f"malformed {opts.format.upper()} row: {e}")
            if bad.stop:
                break
            continue
        row_text = raw.row_text()
        if not row:
            continue  # a blank line
        if columns is None and opts.header:
            columns = row
            width = len(row)
            if opts.key_column is not None:
                key_index = _column_index(opts.key_column, columns, name)
            continue
        if width is None:
            width = len(row)
        if key_index is None and opts.key_column is not None:
            key_index = _column_index(opts.key_column, None, name)
        if len(row) != width:
            bad.add(name, start, f"{len(row)} fields where the "
                    f"{'header has' if columns else 'first row has'} {width}")
            if bad.stop:
                break
            continue
        try:
            if as_json:
                obj: Any = dict(zip(columns, row)) if columns is not None else row
                value = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            else:
                value = row_text.encode("utf-8", "surrogateescape")
            key = None
            if keys is not None:
                if key_index is None or key_index >= width:
                    raise UsageError(f"{name}: --key-column {opts.key_column} is beyond the "
                                     f"{width} columns")
                key = row[key_index].encode("utf-8")
        except UnicodeEncodeError:
            bad.add(name, start, "not valid UTF-8")
            if bad.stop:
                break
            continue
        values.append(value)
        if keys is not None:
            keys.append(key)
        lines.append(start)
        if len(values) >= CSV_CHUNK:
            yield Chunk(name, values, keys, lines=lines)
            values, lines = [], []
            keys = [] if keys is not None else None
    if values:
        yield Chunk(name, values, keys, lines=lines)


# ---- file -------------------------------------------------------------------------------------


def read_file(stream: BinaryIO, name: str) -> Iterator[Chunk]:
    yield Chunk(name, [stream.read()])

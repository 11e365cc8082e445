"""fastprod.produce.readers and inputs: formats, malformed input, decompression, paths."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os

import lz4.frame
import pytest
import zstandard

from fastprod.produce import inputs, readers
from fastprod.produce.readers import ReadOptions, UsageError
from fastprod.produce.records import MAX_SHOWN, Malformed


def _read(data: bytes, bad: Malformed | None = None, **kw):
    opts = ReadOptions(**kw)
    opts.validate()
    chunks = list(readers.reader_for(opts)(io.BytesIO(data), "in.txt", bad or Malformed()))
    return chunks


def _records(chunks):
    out = []
    for c in chunks:
        for i in range(len(c)):
            out.append((c.keys[i] if c.keys is not None else None, c.values[i],
                        c.timestamps[i] if c.timestamps is not None else None,
                        c.headers[i] if c.headers is not None else None, c.line_of(i)))
    return out


# ---- lines ----------------------------------------------------------------------------------


def test_lines_keep_empty_records_and_a_last_line_without_newline():
    recs = _records(_read(b"a\n\nb\nlast"))
    assert [(v, line) for _, v, _, _, line in recs] == [(b"a", 1), (b"", 2), (b"b", 3), (b"last", 4)]


def test_lines_split_across_read_blocks(monkeypatch):
    monkeypatch.setattr(readers, "BLOCK", 7)
    data = b"".join(b"record-%d\n" % i for i in range(100))
    recs = _records(_read(data))
    assert [v for _, v, _, _, _ in recs] == [b"record-%d" % i for i in range(100)]
    assert [line for *_, line in recs] == list(range(1, 101))


def test_custom_delimiter_and_key_delimiter_as_kcat():
    recs = _records(_read(b"k1:v1|nokey|k2:v:2|", delimiter=b"|", key_delimiter=b":"))
    assert [(k, v) for k, v, *_ in recs] == [(b"k1", b"v1"), (None, b"nokey"), (b"k2", b"v:2")]


# ---- jsonl ----------------------------------------------------------------------------------


def test_jsonl_key_field_value_is_the_line_as_it_is():
    data = b'{"id": 7, "v": "x"}\n{"id":"u-1"}\n{"id":null}\n'
    recs = _records(_read(data, format="jsonl", key_field="id"))
    assert [(k, v) for k, v, *_ in recs] == [(b"7", b'{"id": 7, "v": "x"}'),
                                             (b"u-1", b'{"id":"u-1"}'), (None, b'{"id":null}')]


def test_jsonl_pointer_value_timestamp_and_headers_fields():
    doc = {"meta": {"user": {"id": 42}, "tags": ["a/b"]}, "ts": "2024-01-02T03:04:05Z",
           "h": {"src": "web", "n": 3}, "body": {"x": 1}}
    data = json.dumps(doc).encode() + b"\n"
    recs = _records(_read(data, format="jsonl", key_field="/meta/user/id", value_field="body",
                          timestamp_field="ts", headers_field="h"))
    assert recs == [(b"42", b'{"x":1}', 1704164645000, [("src", b"web"), ("n", b"3")], 1)]
    recs = _records(_read(data, format="jsonl", key_field="/meta/tags/0"))
    assert recs[0][0] == b"a/b"


def test_jsonl_pointer_escapes():
    data = b'{"a/b": {"c~d": "k"}}\n'
    assert _records(_read(data, format="jsonl", key_field="/a~1b/c~0d"))[0][0] == b"k"


def test_jsonl_malformed_lines_are_counted_with_their_line_and_skipped():
    data = b'{"id":1}\n{oops\n\n{"id":2}\n{"x":1}\n[1,2]\n{"id":3}\n\xff\n'
    bad = Malformed()
    recs = _records(_read(data, bad, format="jsonl", key_field="id"))
    assert [k for k, *_ in recs] == [b"1", b"2", b"3"]
    assert [line for *_, line in recs] == [1, 4, 7]
    assert bad.count == 4
    assert bad.shown[0].startswith("in.txt:2: invalid JSON: Expecting property name")
    assert bad.shown[1:3] == ["in.txt:5: no key field id", "in.txt:6: no key field id"]
    assert bad.shown[3].startswith("in.txt:8: invalid JSON")


def test_jsonl_bad_timestamps_are_malformed():
    data = b'{"t":-5}\n{"t":"yesterday"}\n{"t":true}\n{"t":1700000000000}\n'
    bad = Malformed()
    recs = _records(_read(data, bad, format="jsonl", timestamp_field="t"))
    assert [t for _, _, t, _, _ in recs] == [1700000000000]
    assert bad.count == 3 and "before 1970" in bad.shown[0] and "ISO 8601" in bad.shown[1]


def test_malformed_shows_the_first_few_then_counts():
    bad = Malformed()
    _read(b"{\n" * 50, bad, format="jsonl")
    assert bad.count == 50 and len(bad.shown) == MAX_SHOWN


@pytest.mark.parametrize("fmt,data", [("jsonl", b'{"a":1}\n{x\n{"a":2}\n'),
                                      ("csv", b"h,i\n1,2\n3\n4,5\n")])
def test_strict_stops_at_the_first_malformed_record_keeping_those_before(fmt, data):
    bad = Malformed(strict=True)
    recs = _records(_read(data, bad, format=fmt))
    assert len(recs) == 1 and bad.count == 1
    assert bad.stop is not None and bad.stop.startswith("in.txt:")
    assert "--strict stops at the first malformed record" in bad.stop


# ---- csv / tsv ------------------------------------------------------------------------------


def test_csv_key_column_raw_row_with_a_quoted_newline():
    data = b'id,name,city\r\n1,ann,"New\nYork"\r\n2,bob,Paris\r\n'
    recs = _records(_read(data, format="csv", key_column="name"))
    assert [(k, v, line) for k, v, _, _, line in recs] == [
        (b"ann", b'1,ann,"New\nYork"', 2), (b"bob", b"2,bob,Paris", 4)]


def test_csv_value_as_json_and_wrong_width_rows():
    data = b"id,name\n1,ann\n2\n3,cy,extra\n4,dee\n"
    bad = Malformed()
    recs = _records(_read(data, bad, format="csv", key_column="0", value_as="json"))
    assert [(k, json.loads(v)) for k, v, *_ in recs] == [
        (b"1", {"id": "1", "name": "ann"}), (b"4", {"id": "4", "name": "dee"})]
    assert bad.shown == ["in.txt:3: 1 fields where the header has 2",
                         "in.txt:4: 3 fields where the header has 2"]


def test_csv_without_header_and_unknown_key_column():
    recs = _records(_read(b"a,b\nc,d\n", format="csv", header=False, value_as="json",
                          key_column="1"))
    assert [(k, json.loads(v)) for k, v, *_ in recs] == [(b"b", ["a", "b"]), (b"d", ["c", "d"])]
    with pytest.raises(UsageError, match="--key-column 'zip' is not a column; the columns are a, b"):
        _read(b"a,b\n1,2\n", format="csv", key_column="zip")


def test_tsv_has_no_quoting():
    recs = _records(_read(b'k\tv\n"x\t"y\n', format="tsv", key_column="k"))
    assert recs[0][:2] == (b'"x', b'"x\t"y')


def test_file_format_is_one_record():
    assert _records(_read(b"a\nb\n", format="file")) == [(None, b"a\nb\n", None, None, 1)]


@pytest.mark.parametrize("kw,message", [
    (dict(format="lines", key_field="id"), "--key-field is for --format jsonl"),
    (dict(format="jsonl", key_column="id"), "--key-column is for --format csv/tsv"),
    (dict(format="jsonl", key_delimiter=b"\t"), "-K is for --format lines"),
    (dict(format="lines", value_as="json"), "--value-as is for --format csv/tsv"),
    (dict(delimiter=b""), "--delimiter must not be empty"),
    (dict(format="parquet"), "unknown --format"),
])
def test_options_that_do_not_fit(kw, message):
    with pytest.raises(UsageError, match=message):
        ReadOptions(**kw).validate()


# ---- inputs ---------------------------------------------------------------------------------

COMPRESSORS = {
    "gz": gzip.compress, "zst": lambda b: zstandard.ZstdCompressor().compress(b),
    "lz4": lz4.frame.compress, "bz2": bz2.compress,
}


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
@pytest.mark.parametrize("named", [True, False])
def test_compressed_input_by_extension_or_magic(tmp_path, ext, named):
    data = b"".join(b"line %d\n" % i for i in range(5000))
    path = tmp_path / (f"in.{ext}" if named else "in.log")
    path.write_bytes(COMPRESSORS[ext](data))
    stream, counter = inputs.open_source(inputs.expand([str(path)])[0])
    with stream:
        assert stream.read() == data
    assert counter.count == path.stat().st_size


def test_a_file_named_gz_that_is_not_gzip_fails_clearly(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"plain text\n")
    stream, _ = inputs.open_source(inputs.expand([str(path)])[0])
    with pytest.raises(Exception) as info:
        stream.read()
    assert inputs.is_decompress_error(info.value)


def test_globs_and_directories_expand_sorted(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.txt", "d/a.txt", "d/sub/c.txt", "x2.log", "x1.log"):
        (tmp_path / name).write_text(name)
    got = [s.name if s.is_stdin else os.path.relpath(s.name, tmp_path) for s in
           inputs.expand([str(tmp_path / "x*.log"), str(tmp_path / "d"), "-"])]
    assert got == ["x1.log", "x2.log", "d/a.txt", "d/b.txt", "d/sub/c.txt", "-"]


def test_missing_paths_fail_before_anything_is_read(tmp_path):
    (tmp_path / "ok.txt").write_text("x")
    with pytest.raises(inputs.InputError, match="nope.txt: no such file"):
        inputs.expand([str(tmp_path / "ok.txt"), str(tmp_path / "nope.txt")])
    with pytest.raises(inputs.InputError, match="no file matches this pattern"):
        inputs.expand([str(tmp_path / "*.csv")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(inputs.InputError, match="the directory holds no file"):
        inputs.expand([str(tmp_path / "empty")])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(inputs.InputError, match="permission denied"):
        inputs.expand([str(path)])


def test_no_argument_is_stdin():
    assert [s.name for s in inputs.expand([])] == ["-"]

"""fastprod._ext.lines: the C path must agree with the Python path on every line."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fastprod._ext.lines import json_keys, split_key_value
from fastprod.produce import readers
from fastprod.produce.readers import ReadOptions
from fastprod.produce.records import Malformed

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_docs = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=12)
_keys = st.sampled_from(["id", "é", "a b", "x"])


def _line(doc, key_value, key, indent, ascii_only):
    if isinstance(doc, dict) and key_value is not None:
        doc = dict(doc)
        doc[key] = key_value[0]
    return json.dumps(doc, indent=indent, ensure_ascii=ascii_only).replace("\n", " ").encode()


@st.composite
def _lines(draw):
    key = draw(_keys)
    out = []
    for _ in range(draw(st.integers(1, 12))):
        doc = draw(_docs | st.dictionaries(st.text(max_size=4), _docs, max_size=4))
        key_value = draw(st.none() | st.tuples(_docs))
        line = _line(doc, key_value, key, draw(st.sampled_from([None, 1])), draw(st.booleans()))
        cut = draw(st.sampled_from(["keep", "keep", "keep", "truncate", "garbage", "blank"]))
        if cut == "truncate" and len(line) > 1:
            line = line[:draw(st.integers(0, len(line) - 1))]
        elif cut == "garbage":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(st.sampled_from([b",", b"}", b"\xff", b'"', b"\\", b"\x01", b"NaN"])) + line[at:]
        elif cut == "blank":
            line = b"   "
        out.append(line.replace(b"\n", b" "))
    return key, out


def _both(data: bytes, **kw):
    opts = ReadOptions(format="jsonl", **kw)
    results = []
    for fn in (readers._read_jsonl_fast, readers._read_jsonl):
        bad = Malformed()
        chunks = list(fn(io.BytesIO(data), "in", bad, opts))
        recs = [(c.keys[i] if c.keys is not None else None, c.values[i], c.line_of(i))
                for c in chunks for i in range(len(c))]
        results.append((recs, bad.count, bad.shown))
    return results


@settings(max_examples=300, deadline=None)
@given(_lines(), st.booleans())
def test_fast_jsonl_agrees_with_json_loads(case, keyed):
    key, lines = case
    fast, slow = _both(b"\n".join(lines) + b"\n", key_field=key if keyed else None)
    assert fast == slow


def test_kernel_takes_the_common_keys_and_leaves_the_rest():
    lines = [b'{"id":"u1","x":[1,{"a":null}]}', b'{"id":42}', b'{bad', b"", b'{"id":1.5}',
             b'{"id":"a\\nb"}', b'{"x":1}', b'{"id":null}', b'{"id":true} ',
             '{"id":"caf\u00e9"}'.encode(), b'{"id":"\xff"}', b"[1]", b'{"id":1}x', b'{"id":-0}',
             b'{"id":1,"id":2}', b'{"i\\u0064":3}', b'{"id":{"a":1}}', b'{"id":"x"}\r']
    keys, left = json_keys(lines, "id")
    assert keys[0:2] == [b"u1", b"42"] and keys[8:10] == [b"true", "caf\u00e9".encode()]
    assert keys[14] == b"2" and keys[17] == b"x"  # the last duplicate wins, as in json.loads
    assert left == [2, 3, 4, 5, 6, 10, 11, 12, 13, 15, 16]


def test_kernel_validates_only_without_a_name():
    keys, left = json_keys([b"{}", b'{"a":1,}', b'{"a":[1,2,]}', b' {"a" : [ ] , "b":{ }}\r',
                            b"{" * 600 + b"}" * 600, b'{"n":' + b"1" * 5000 + b"}"], None)
    assert keys is None and left == [1, 2, 4, 5]


def test_deep_nesting_is_malformed_not_a_crash():
    data = b'{"id":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n" + b'{"id":1}\n'
    (fast, count, shown), _ = _both(data, key_field="id")
    assert [k for k, _, _ in fast] == [b"1"] and count == 1 and "nested too deeply" in shown[0]


@given(st.lists(st.binary(max_size=12), max_size=20), st.sampled_from([b"\t", b"::", b"\x00"]))
def test_split_key_value_is_partition(parts, delimiter):
    keys, values = split_key_value(parts, delimiter)
    want = [p.partition(delimiter) for p in parts]
    assert keys == [k if sep else None for k, sep, _ in want]
    assert values == [v if sep else p for (_, sep, v), p in zip(want, parts)]

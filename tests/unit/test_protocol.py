"""Unit tests of fastprod.protocol: generated codecs, primitives, framing, negotiation.

No broker here. Independent checks: byte strings worked out by hand from the protocol
guide (https://kafka.apache.org/protocol) and, when installed, kafka-python 3's
schema-driven codecs reading and re-writing our bytes.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastprod.errors import ProtocolError
from fastprod.localkafka import jars
from fastprod.protocol import (
    APIS,
    encode_request,
    encode_response,
    decode_request,
    decode_response,
    negotiate_versions,
    peek_correlation_id,
    pick_version,
    write_request,
)
from fastprod.protocol import primitives as p
from fastprod.protocol.base import FieldSpec, Message, Struct
from fastprod.protocol.messages import REQUESTS, RESPONSES
from fastprod.protocol.messages.api_versions import (
    ApiVersion,
    ApiVersionsRequest,
    ApiVersionsResponse,
    SupportedFeatureKey,
)
from fastprod.protocol.messages.header import RequestHeader, ResponseHeader
from fastprod.protocol.messages.metadata import MetadataRequest, MetadataRequestTopic
from fastprod.protocol.messages.produce import (
    LeaderIdAndEpoch,
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools" / "gen_protocol.py"
# Where tools/gen_protocol.py reads the schemas by default; ./run-tests fetches it first.
CLIENTS_JAR = jars.jar_dir() / f"kafka-clients-{jars.KAFKA_VERSION}.jar"
FETCH_HINT = "python -m fastprod broker fetch"

MESSAGES: list[type[Message]] = sorted(
    [*REQUESTS.values(), *RESPONSES.values(), RequestHeader, ResponseHeader],
    key=lambda c: c.__name__)
CASES = [(cls, v) for cls in MESSAGES for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)]
CASE_IDS = [f"{cls.__name__}-v{v}" for cls, v in CASES]


# -- value builders driven by the generated FIELDS metadata ------------------------------

INT_RANGES = {
    "int8": (-2**7, 2**7 - 1), "int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1),
    "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1),
}


def _scalar_strategy(t: str) -> st.SearchStrategy:
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        return st.integers(lo, hi)
    return {
        "bool": st.booleans(),
        "float64": st.floats(allow_nan=False),
        "uuid": st.uuids(),
        "string": st.text(max_size=8),
        "bytes": st.binary(max_size=8),
        "records": st.binary(max_size=24),
    }[t]


def _field_strategy(spec: FieldSpec, v: int) -> st.SearchStrategy:
    elem = spec.type[2:] if spec.is_array else spec.type
    if spec.struct is not None:
        one = struct_strategy(spec.struct, v)
    else:
        one = _scalar_strategy(elem)
    value = st.lists(one, max_size=3) if spec.is_array else one
    return st.none() | value if spec.nullable(v) else value


@functools.cache
def struct_strategy(cls: type[Struct], v: int) -> st.SearchStrategy:
    """Any value of ``cls`` that version v can carry (absent fields keep defaults)."""
    return st.builds(cls, **{s.name: _field_strategy(s, v) for s in cls.FIELDS if s.present(v)})


def _rich_scalar(t: str, seed: int) -> object:
    seed %= 100
    return {
        "bool": True, "int8": -7 - seed, "int16": 300 + seed, "uint16": 65000 + seed,
        "int32": -70000 - seed, "uint32": 2**32 - 1 - seed, "int64": 2**40 + seed,
        "float64": 1.5 + seed, "uuid": uuid.UUID(int=(seed + 1) * 0x0102030405060708),
        "string": f"s{seed}\u00e9", "bytes": bytes([0, seed % 256, 0xFF]),
        "records": b"rec-" + bytes([seed % 256]) * 3,
    }[t]


def rich(cls: type[Struct], v: int, nulls: bool = False, seed: int = 1) -> Struct:
    """Every field v carries set to a non-default value (or None / empty with ``nulls``)."""
    kwargs: dict[str, object] = {}
    for i, spec in enumerate(cls.FIELDS):
        if not spec.present(v):
            continue
        s = seed * 31 + i
        if nulls and spec.nullable(v):
            kwargs[spec.name] = None
        elif spec.is_array:
            if nulls:
                kwargs[spec.name] = []
            elif spec.struct is not None:
                kwargs[spec.name] = [rich(spec.struct, v, nulls, s), rich(spec.struct, v, nulls, s + 1)]
            else:
                kwargs[spec.name] = [_rich_scalar(spec.type[2:], s), _rich_scalar(spec.type[2:], s + 1)]
        elif spec.struct is not None:
            kwargs[spec.name] = rich(spec.struct, v, nulls, s)
        else:
            kwargs[spec.name] = _rich_scalar(spec.type, s)
    return cls(**kwargs)


# -- round trips -----------------------------------------------------------------------------

def _round_trip(cls: type[Message], v: int, msg: Message) -> None:
    encoded = msg.encode(v)
    decoded = cls.decode(encoded, v)
    assert decoded == msg
    assert decoded.encode(v) == encoded
    key = cls.API_KEY
    if key is None:
        return
    if cls is REQUESTS.get(key):
        frame = encode_request(key, v, 12345, "client-1", msg)
        assert int.from_bytes(frame[:4], "big") == len(frame) - 4
        header, body = decode_request(frame[4:])
        assert (header.request_api_key, header.request_api_version, header.correlation_id,
                header.client_id) == (key, v, 12345, "client-1")
        assert body == msg
    else:
        frame = encode_response(key, v, -5, msg)
        assert int.from_bytes(frame[:4], "big") == len(frame) - 4
        assert peek_correlation_id(frame[4:]) == -5
        assert decode_response(key, v, frame[4:]) == (-5, msg)


@pytest.mark.parametrize(("cls", "version"), CASES, ids=CASE_IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_generated_values(cls: type[Message], version: int, data: st.DataObject) -> None:
    _round_trip(cls, version, data.draw(struct_strategy(cls, version)))


@pytest.mark.parametrize(("cls", "version"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("nulls", [False, True], ids=["full", "nulls"])
def test_round_trip_rich_and_default_values(cls: type[Message], version: int, nulls: bool) -> None:
    _round_trip(cls, version, rich(cls, version, nulls))
    _round_trip(cls, version, cls())


# -- malformed input never escapes as anything but ProtocolError ------------------------------

@pytest.mark.parametrize(("cls", "version"), CASES, ids=CASE_IDS)
def test_every_truncation_raises_protocol_error(cls: type[Message], version: int) -> None:
    for nulls in (False, True):
        encoded = rich(cls, version, nulls).encode(version)
        for cut in range(len(encoded)):
            with pytest.raises(ProtocolError):
                cls.decode(encoded[:cut], version)
        with pytest.raises(ProtocolError, match="trailing"):
            cls.decode(encoded + b"\0", version)


@pytest.mark.parametrize(("cls", "version"), CASES, ids=CASE_IDS)
def test_corrupted_bytes_raise_protocol_error_or_decode(cls: type[Message], version: int) -> None:
    encoded = bytearray(rich(cls, version).encode(version))
    for i in range(len(encoded)):
        original = encoded[i]
        for b in (0x00, 0x80, 0xFF):
            encoded[i] = b
            try:
                cls.decode(encoded, version)
            except ProtocolError:
                pass
        encoded[i] = original


@pytest.mark.parametrize("cls", MESSAGES, ids=[c.__name__ for c in MESSAGES])
@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_bytes_raise_protocol_error_or_decode(cls: type[Message], data: bytes) -> None:
    for version in (cls.MIN_VERSION, cls.MAX_VERSION):
        try:
            cls.decode(data, version)
        except ProtocolError:
            pass


@pytest.mark.parametrize("api_key", sorted(APIS))
def test_truncated_response_frames_raise_protocol_error(api_key: int) -> None:
    info = APIS[api_key]
    for version in (info.min_version, info.max_version):
        frame = encode_response(api_key, version, 7, rich(info.response, version))[4:]
        for cut in range(len(frame)):
            with pytest.raises(ProtocolError):
                decode_response(api_key, version, frame[:cut])


# -- hand-checked bytes ------------------------------------------------------------------------

def test_api_versions_request_v3_known_bytes() -> None:
    frame = encode_request(18, 3, 1, "c", ApiVersionsRequest("fastprod", "0.1.0"))
    assert frame == bytes.fromhex(
        "0000001c"            # size 28
        "0012" "0003"         # api key 18, version 3
        "00000001"            # correlation id
        "0001" "63"           # client id "c": int16 length even in header v2
        "00"                  # header tagged fields
        "09" + b"fastprod".hex() +   # compact string: uvarint(8 + 1)
        "06" + b"0.1.0".hex() +
        "00")                 # body tagged fields


def test_metadata_request_v12_known_bytes() -> None:
    msg = MetadataRequest(topics=[MetadataRequestTopic(name="foo")],
                          allow_auto_topic_creation=True,
                          include_topic_authorized_operations=False)
    frame = encode_request(3, 12, 0x0A0B0C0D, None, msg)
    assert frame[4:] == bytes.fromhex(
        "0003" "000c" "0a0b0c0d"
        "ffff"                # null client id
        "00"                  # header tagged fields
        "02"                  # compact array: 1 topic
        + "00" * 16 +         # topic id: zero uuid
        "04" + b"foo".hex() +  # compact nullable string
        "00"                  # topic tagged fields
        "01"                  # allow_auto_topic_creation
        "00"                  # include_topic_authorized_operations (v8+)
        "00")                 # tagged fields
    assert len(frame) == 4 + int.from_bytes(frame[:4], "big")


def test_metadata_request_v0_known_bytes() -> None:
    assert MetadataRequest(topics=[MetadataRequestTopic(name="ab")]).encode(0) == \
        bytes.fromhex("00000001" "0002" + b"ab".hex())


def test_produce_request_v3_known_bytes() -> None:
    msg = ProduceRequest(None, -1, 30000, [
        TopicProduceData("topic", partition_data=[PartitionProduceData(0, b"abc")])])
    assert msg.encode(3) == bytes.fromhex(
        "ffff"                 # null transactional id
        "ffff" "00007530"      # acks -1, timeout 30000
        "00000001" "0005" + b"topic".hex() +
        "00000001" "00000000" "00000003" + b"abc".hex())


def test_produce_request_v9_known_bytes_with_memoryview_records() -> None:
    records = memoryview(b"\x01" * 130)  # 131 does not fit one varint byte
    msg = ProduceRequest("tx", 1, 5, [
        TopicProduceData("t", partition_data=[PartitionProduceData(2, records)])])
    assert msg.encode(9) == bytes.fromhex(
        "03" + b"tx".hex() + "0001" "00000005"
        "02" "02" + b"t".hex() +
        "02" "00000002" "8301" + "01" * 130 + "00"
        "00" "00")


def test_api_versions_response_v3_uses_header_v0_and_reads_tagged_fields() -> None:
    frame = bytes.fromhex(
        "00000007"             # correlation id, header v0: no tagged fields byte
        "0000"                 # error code
        "02" "0000" "0003" "000d" "00"   # one api: Produce 3-13
        "00000000"             # throttle time
        "03"                   # three tagged fields
        "00" "09" "02" "03" + b"tv".hex() + "0001" "0002" "00"   # 0: SupportedFeatures
        "01" "08" "0000000000000005"                            # 1: FinalizedFeaturesEpoch
        "07" "02" "abcd")      # unknown tag 7: skipped
    correlation_id, msg = decode_response(18, 3, frame)
    assert correlation_id == 7
    assert msg == ApiVersionsResponse(
        error_code=0, api_keys=[ApiVersion(0, 3, 13)], throttle_time_ms=0,
        supported_features=[SupportedFeatureKey("tv", 1, 2)], finalized_features_epoch=5)
    # Written back: ascending tags, the unknown one dropped, default-valued ones omitted.
    assert encode_response(18, 3, 7, msg)[4:] == bytes.fromhex(
        "00000007" "0000" "02" "0000" "0003" "000d" "00" "00000000"
        "02" "00" "09" "02" "03" + b"tv".hex() + "0001" "0002" "00"
        "01" "08" "0000000000000005")


def test_api_versions_response_falls_back_to_v0() -> None:
    # A broker that does not know the requested version answers with v0 and
    # UNSUPPORTED_VERSION (35), whatever version was asked for.
    v0 = ApiVersionsResponse(error_code=35, api_keys=[ApiVersion(18, 0, 3)])
    frame = encode_response(18, 0, 9, v0)[4:]
    assert decode_response(18, 4, frame) == (9, v0)


def test_produce_response_v10_reads_current_leader_tagged_field() -> None:
    body = bytes.fromhex(
        "02" "02" + b"t".hex() +                    # one topic "t"
        "02" "00000001" "0006" "000000000000000a"    # partition 1, error 6, base offset 10
        "ffffffffffffffff" "0000000000000000"        # log append time -1, log start 0
        "01" "00"                                     # no record errors, null error message
        "01" "00" "09" "00000003" "00000004" "00"    # tag 0: CurrentLeader(3, 4)
        "00"                                          # topic tagged fields
        "0000000a"                                    # throttle time 10
        "00")
    frame = bytes.fromhex("00000063" "00") + body     # response header v1
    correlation_id, msg = decode_response(0, 10, frame)
    assert correlation_id == 0x63
    partition = msg.responses[0].partition_responses[0]
    assert partition == PartitionProduceResponse(
        1, 6, 10, -1, 0, [], None, LeaderIdAndEpoch(3, 4))
    assert msg.throttle_time_ms == 10 and msg.node_endpoints == []
    assert msg.encode(10) == body


def test_tagged_field_of_wrong_size_is_rejected() -> None:
    body = bytes.fromhex(
        "02" "02" "74" "02" "00000001" "0006" "000000000000000a"
        "ffffffffffffffff" "0000000000000000" "01" "00"
        "01" "00" "0a" "00000003" "00000004" "00" "00"   # declares 10 bytes, struct uses 9
        "00" "0000000a" "00")
    with pytest.raises(ProtocolError, match="tagged field 0"):
        ProduceResponse.decode(body, 10)


# -- encode-side checks ------------------------------------------------------------------------

def test_non_ignorable_field_absent_in_version_is_refused() -> None:
    msg = MetadataRequest(include_cluster_authorized_operations=True)
    assert MetadataRequest.decode(msg.encode(10), 10) == msg
    with pytest.raises(ValueError, match="include_cluster_authorized_operations"):
        msg.encode(12)


def test_ignorable_field_absent_in_version_is_dropped() -> None:
    msg = ProduceRequest(topic_data=[TopicProduceData("t", uuid.uuid4())])
    assert ProduceRequest.decode(msg.encode(12), 12).topic_data[0].topic_id == p.UUID_ZERO
    assert ProduceRequest.decode(msg.encode(13), 13).topic_data[0].name == ""


def test_null_only_where_the_schema_allows_it() -> None:
    assert MetadataRequest(topics=None).encode(1) == b"\xff\xff\xff\xff"
    with pytest.raises(ValueError, match="may only be None"):
        MetadataRequest(topics=None).encode(0)


def test_versions_outside_the_schema_are_refused() -> None:
    with pytest.raises(ValueError, match="no version 2"):
        ProduceRequest().encode(2)
    with pytest.raises(ValueError, match="no version 14"):
        ProduceRequest.decode(b"", 14)


def test_request_header_client_id_is_never_compact() -> None:
    h = RequestHeader(3, 12, 1, "abc")
    assert h.encode(2) == bytes.fromhex("0003000c00000001" "0003") + b"abc" + b"\0"
    assert h.encode(1) == h.encode(2)[:-1]
    assert ResponseHeader(1).encode(1) == b"\0\0\0\1\0"


def test_write_request_appends_to_a_buffer() -> None:
    out = bytearray(b"prefix")
    msg = ProduceRequest(None, 1, 100, [])
    write_request(out, 0, 9, 3, "x", msg)
    assert bytes(out[6:]) == encode_request(0, 9, 3, "x", msg)
    with pytest.raises(TypeError):
        encode_request(3, 12, 1, None, msg)


# -- primitives --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 1, 127, 128, 16383, 16384, 2**21, 2**28 - 1, 2**28,
                                   2**32 - 1])
def test_uvarint_round_trip(value: int) -> None:
    out = bytearray()
    p.write_uvarint(out, value)
    assert p.read_uvarint(memoryview(bytes(out)), 0) == (value, len(out))
    assert len(out) == max(1, (value.bit_length() + 6) // 7)


@pytest.mark.parametrize("raw", ["80" * 5 + "01", "ffffffff1f", "ffffffff7f"])
def test_uvarint_longer_than_32_bits_is_rejected(raw: str) -> None:
    with pytest.raises(ProtocolError, match="5 bytes"):
        p.read_uvarint(memoryview(bytes.fromhex(raw)), 0)


@pytest.mark.parametrize("raw", ["", "80", "ffff", "ffffffff"])
def test_truncated_uvarint_is_rejected(raw: str) -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        p.read_uvarint(memoryview(bytes.fromhex(raw)), 0)


@pytest.mark.parametrize(("reader", "raw", "match"), [
    (p.read_string, "fffe", "negative length"),
    (p.read_string, "ffff", "null string"),
    (p.read_nullable_string, "0005616263", "truncated string"),
    (p.read_string, "0002c328", "UTF-8"),
    (p.read_compact_string, "00", "null string"),
    (p.read_compact_nullable_string, "05616263", "truncated string"),
    (p.read_bytes, "fffffffe", "negative length"),
    (p.read_bytes, "ffffffff", "null bytes"),
    (p.read_nullable_bytes, "7fffffff00", "truncated bytes"),
    (p.read_compact_bytes, "00", "null bytes"),
    (p.read_compact_nullable_bytes, "ffffffff0f", "truncated bytes"),
])
def test_bad_lengths_are_rejected(reader, raw: str, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ProtocolError, match=match):
        reader(memoryview(bytes.fromhex(raw)), 0)


def test_nullable_readers_return_none() -> None:
    assert p.read_nullable_string(memoryview(b"\xff\xff"), 0) == (None, 2)
    assert p.read_compact_nullable_string(memoryview(b"\0"), 0) == (None, 1)
    assert p.read_nullable_bytes(memoryview(b"\xff\xff\xff\xff"), 0) == (None, 4)
    assert p.read_compact_nullable_bytes(memoryview(b"\0"), 0) == (None, 1)


def test_huge_array_counts_are_rejected_before_looping() -> None:
    huge = memoryview(bytes.fromhex("7fffffff") + b"\0" * 16)
    with pytest.raises(ProtocolError, match="does not fit"):
        p.read_array_len(huge, 0, 1)
    with pytest.raises(ProtocolError, match="does not fit"):
        p.read_compact_array_len(memoryview(bytes.fromhex("ffffffff0f")), 0, 1)
    with pytest.raises(ProtocolError, match="null array"):
        p.read_array_len(memoryview(b"\xff\xff\xff\xff"), 0, 1)
    assert p.read_nullable_array_len(memoryview(b"\xff\xff\xff\xff"), 0, 4) == (-1, 4)
    with pytest.raises(ProtocolError):
        MetadataRequest.decode(bytes.fromhex("7fffffff"), 0)


def test_skip_tagged_fields_checks_bounds() -> None:
    assert p.skip_tagged_fields(memoryview(bytes.fromhex("02" "0101aa" "0200")), 0) == 6
    with pytest.raises(ProtocolError, match="tagged field 1"):
        p.skip_tagged_fields(memoryview(bytes.fromhex("01" "0105aa")), 0)


# -- registry and version negotiation ---------------------------------------------------------

def test_registry_covers_the_producer_apis() -> None:
    assert {k: a.name for k, a in APIS.items()} == {
        0: "Produce", 3: "Metadata", 10: "FindCoordinator", 17: "SaslHandshake",
        18: "ApiVersions", 22: "InitProducerId", 24: "AddPartitionsToTxn",
        25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 36: "SaslAuthenticate",
        19: "CreateTopics"}  # for fastprod.localkafka.probe
    produce = APIS[0]
    assert (produce.request, produce.response) == (ProduceRequest, ProduceResponse)
    assert (produce.min_version, produce.max_version) == (3, 13)
    assert produce.request_header_version(8) == 1 and produce.request_header_version(9) == 2
    assert produce.response_header_version(8) == 0 and produce.response_header_version(9) == 1
    assert APIS[18].response_header_version(4) == 0
    assert APIS[17].request_header_version(1) == 1   # SaslHandshake is never flexible
    assert APIS[22].max_usable_version == 5          # InitProducerId v6 is unstable


def test_pick_version() -> None:
    broker = ApiVersionsResponse(api_keys=[
        ApiVersion(0, 0, 11), ApiVersion(3, 0, 20), ApiVersion(22, 0, 6), ApiVersion(18, 0, 2),
        ApiVersion(26, 6, 9)])
    assert pick_version(0, broker) == 11
    assert pick_version(3, broker) == 13
    assert pick_version(22, broker) == 5
    assert pick_version(18, broker) == 2
    assert pick_version(26, broker) is None      # no overlap
    assert pick_version(10, broker) is None      # broker lacks the api
    assert pick_version(0, {0: (0, 2)}) is None  # never Produce below v3
    assert pick_version(0, {0: (0, 13)}, max_version=12) == 12
    assert pick_version(0, {0: (0, 13)}, max_version=2) is None
    assert negotiate_versions(broker) == {0: 11, 3: 13, 18: 2, 22: 5}
    with pytest.raises(ValueError):
        pick_version(999, broker)


# -- independent implementation: kafka-python 3 ------------------------------------------------

@functools.cache
def _kafka_python_classes() -> dict[str, type]:
    pytest.importorskip("kafka.protocol.api_message")
    import importlib
    import pkgutil

    import kafka.protocol
    from kafka.protocol.api_message import ApiMessage

    for mod in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        try:
            importlib.import_module(mod.name)
        except Exception:  # noqa: BLE001 - optional modules of an optional oracle
            continue
    found: dict[str, type] = {}
    stack = [ApiMessage]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__dict__.get("_class_version") is None and getattr(cls, "_json", None):
            found.setdefault(cls.__name__, cls)
    return found


API_CASES = [(cls, v) for cls, v in CASES if cls.API_KEY is not None]


@pytest.mark.parametrize(("cls", "version"), API_CASES,
                         ids=[f"{c.__name__}-v{v}" for c, v in API_CASES])
def test_kafka_python_reads_and_rewrites_our_bytes(cls: type[Message], version: int) -> None:
    theirs = _kafka_python_classes().get(cls.__name__)
    if theirs is None or not theirs.min_version <= version <= theirs.max_version:
        pytest.skip(f"kafka-python has no {cls.__name__} v{version}")
    for nulls in (False, True):
        msg = rich(cls, version, nulls)
        if cls is ApiVersionsResponse:
            # kafka-python reads any ApiVersionsResponse with an error as v0 (a shortcut
            # for UNSUPPORTED_VERSION; Java and we fall back only when parsing fails).
            msg.error_code = 0
        ours = msg.encode(version)
        decoded = theirs.decode(ours, version=version)
        for spec in cls.FIELDS:
            if spec.present(version) and spec.type in ("int8", "int16", "int32", "int64",
                                                       "bool", "string", "bytes"):
                if spec.name in theirs.fields:  # a few names differ in kafka-python
                    assert getattr(decoded, spec.name) == getattr(msg, spec.name), spec.name
        if cls is REQUESTS.get(cls.API_KEY):
            # Whole frames: the header version (v1 or v2) is chosen independently too.
            decoded.with_header(correlation_id=77, client_id="cid")
            assert bytes(decoded.encode(version=version, header=True, framed=True)) == \
                encode_request(cls.API_KEY, version, 77, "cid", msg)
        decoded._header = None  # kafka-python sets it only on objects it builds itself
        assert decoded.encode(version=version) == ours


# -- the generated code is up to date ---------------------------------------------------------

def _generator(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATOR), *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **env})


def test_generated_code_matches_the_schemas() -> None:
    # The schemas are read from the kafka-clients jar, not kept in the repo: a missing jar
    # fails here rather than skipping the check.
    assert CLIENTS_JAR.is_file(), f"{CLIENTS_JAR} is missing: run `{FETCH_HINT}`"
    result = _generator("--check")
    assert result.returncode == 0, result.stderr


def test_check_mode_without_the_jar_says_to_fetch_it(tmp_path: Path) -> None:
    result = _generator("--check", FASTPROD_CACHE=str(tmp_path / "empty-cache"))
    assert result.returncode == 2
    assert f"kafka-clients-{jars.KAFKA_VERSION}.jar" in result.stderr
    assert FETCH_HINT in result.stderr


def test_check_mode_fails_without_schemas(tmp_path: Path) -> None:
    result = _generator("--check", "--schema-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no *.json schemas in" in result.stderr


def test_schema_dir_is_read_for_the_needed_schemas_only(tmp_path: Path) -> None:
    # Every schema of the jar (about 200) in a folder: the generator takes the ones it
    # needs, so --check still passes; without one of them it names the missing file.
    assert CLIENTS_JAR.is_file(), f"{CLIENTS_JAR} is missing: run `{FETCH_HINT}`"
    with zipfile.ZipFile(CLIENTS_JAR) as zf:
        for name in zf.namelist():
            if name.startswith("common/message/") and name.endswith(".json"):
                (tmp_path / name.rsplit("/", 1)[1]).write_bytes(zf.read(name))
    assert len(list(tmp_path.glob("*.json"))) > 100
    result = _generator("--check", "--schema-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (tmp_path / "CreateTopicsResponse.json").unlink()
    result = _generator("--check", "--schema-dir", str(tmp_path))
    assert result.returncode == 2
    assert "lacks CreateTopicsResponse.json" in result.stderr


def test_check_mode_notices_drift(tmp_path: Path) -> None:
    out = tmp_path / "messages"
    shutil.copytree(ROOT / "fastprod" / "protocol" / "messages", out,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (out / "produce.py").write_text((out / "produce.py").read_text() + "# edited\n")
    (out / "stale.py").write_text("")
    result = _generator("--check", "--out-dir", str(out))
    assert result.returncode == 1
    assert "produce.py is out of date" in result.stderr
    assert "stale.py is not generated any more" in result.stderr

"""The drop-ins' config names: librdkafka's and kafka-python's mapped onto the Java
producer's, and the ones with no equivalent refused with the closest Java key named.
(No broker: translate_config is a pure function; one test builds a Producer on an
unreachable bootstrap address to see the translated config accepted.)"""

from __future__ import annotations

import pytest

from fastprod import ConfigError, ProducerConfig
from fastprod.compat import confluent, kafka_python


@pytest.mark.parametrize("rdkafka, java", [
    ({"queue.buffering.max.ms": 20}, {"linger.ms": 20}),
    ({"linger.ms": 7}, {"linger.ms": 7}),
    ({"message.max.bytes": 2_000_000}, {"max.request.size": 2_000_000}),
    ({"queue.buffering.max.kbytes": 2048}, {"buffer.memory": 2048 * 1024}),
    ({"compression.codec": "lz4"}, {"compression.type": "lz4"}),
    ({"compression.type": "zstd", "compression.level": 7},
     {"compression.type": "zstd", "compression.zstd.level": 7}),
    ({"message.timeout.ms": 30000}, {"delivery.timeout.ms": 30000}),
    ({"request.required.acks": -1}, {"acks": "all"}),
    ({"acks": 1}, {"acks": "1"}),
    ({"message.send.max.retries": 3}, {"retries": 3}),
    ({"max.in.flight": 2}, {"max.in.flight.requests.per.connection": 2}),
    ({"metadata.broker.list": "h:1"}, {"bootstrap.servers": "h:1"}),
    ({"topic.metadata.refresh.interval.ms": 1000}, {"metadata.max.age.ms": 1000}),
    ({"sasl.mechanisms": "PLAIN"}, {"sasl.mechanism": "PLAIN"}),
    ({"default.topic.config": {"acks": "all"}, "linger.ms": 1},
     {"acks": "all", "linger.ms": 1}),
    ({"partitioner": "murmur2_random"}, {}),
])
def test_librdkafka_names_map_to_java(rdkafka, java):
    got, _ = confluent.translate_config(rdkafka)
    assert got == java


def test_librdkafka_translation_is_accepted_by_the_java_config():
    java, local = confluent.translate_config({
        "bootstrap.servers": "127.0.0.1:1", "queue.buffering.max.ms": 20,
        "message.max.bytes": 2_000_000, "queue.buffering.max.kbytes": 4096,
        "compression.codec": "gzip", "compression.level": 3, "request.required.acks": 1,
        "enable.idempotence": False, "statistics.interval.ms": 500,
        "stats_cb": lambda s: None, "queue.buffering.max.messages": 10})
    cfg = ProducerConfig(java)
    assert (cfg.linger_ms, cfg.max_request_size, cfg.buffer_memory) == (20, 2_000_000,
                                                                       4096 * 1024)
    assert cfg["compression.type"] == "gzip" and cfg["compression.gzip.level"] == 3
    assert local["statistics.interval.ms"] == 500
    assert local["queue.buffering.max.messages"] == 10


def test_librdkafka_defaults_kept_locally():
    _, local = confluent.translate_config({})
    assert local["queue.buffering.max.messages"] == confluent.QUEUE_MAX_MESSAGES == 100_000


@pytest.mark.parametrize("key, value, closest", [
    ("batch.num.messages", 1000, "batch.size"),
    ("sticky.partitioning.linger.ms", 10, "partitioner.class"),
    ("queue.buffering.backpressure.threshold", 1, "max.in.flight.requests.per.connection"),
    ("socket.timeout.ms", 1000, "request.timeout.ms"),
    ("debug", "all", "logging"),
    ("ssl.ca.location", "/x", "ssl.truststore.location"),
    ("partitioner", "consistent_random", "murmur2_random"),
    ("compression.codec", "inherit", "compression.type"),
])
def test_librdkafka_names_without_equivalent_are_refused(key, value, closest):
    with pytest.raises(ConfigError) as info:
        confluent.translate_config({key: value})
    assert key in str(info.value) or repr(value) in str(info.value)
    assert closest in str(info.value)


@pytest.mark.parametrize("conf, what", [
    ({"queue.buffering.max.kbytes": 0}, "queue.buffering.max.kbytes"),
    ({"queue.buffering.max.messages": -1}, "queue.buffering.max.messages"),
    ({"statistics.interval.ms": "often"}, "statistics.interval.ms"),
    ({"compression.level": 3}, "compression.level"),
    ({"stats_cb": 42}, "stats_cb"),
    ({"linger.ms": 1, "queue.buffering.max.ms": 2}, "linger.ms"),
])
def test_librdkafka_bad_values_are_refused(conf, what):
    with pytest.raises(ConfigError, match=what.replace(".", r"\.")):
        confluent.translate_config(conf)


def test_unknown_librdkafka_key_reaches_the_java_config_check():
    java, _ = confluent.translate_config({"bootstrap.servers": "h:1", "lingr.ms": 5})
    with pytest.raises(ConfigError, match="lingr.ms"):
        ProducerConfig(java)


@pytest.mark.parametrize("kwargs, java", [
    ({"bootstrap_servers": ["a:1", "b:2"]}, {"bootstrap.servers": "a:1,b:2"}),
    ({"bootstrap_servers": "a:1"}, {"bootstrap.servers": "a:1"}),
    ({"acks": -1}, {"acks": "all"}),
    ({"acks": 0}, {"acks": "0"}),
    ({"acks": "all"}, {"acks": "all"}),
    ({"linger_ms": 10, "batch_size": 32768}, {"linger.ms": 10, "batch.size": 32768}),
    ({"compression_type": None}, {"compression.type": "none"}),
    ({"compression_type": "gzip"}, {"compression.type": "gzip"}),
    ({"retries": 5, "max_in_flight_requests_per_connection": 1},
     {"retries": 5, "max.in.flight.requests.per.connection": 1}),
    ({"sasl_plain_username": "u", "sasl_plain_password": "p"},
     {"sasl.username": "u", "sasl.password": "p"}),
    ({"buffer_memory": 1 << 20, "max_block_ms": 100, "request_timeout_ms": 500},
     {"buffer.memory": 1 << 20, "max.block.ms": 100, "request.timeout.ms": 500}),
])
def test_kafka_python_keywords_map_to_java(kwargs, java):
    got, _ = kafka_python.translate_config(kwargs)
    assert got == java


def test_kafka_python_translation_is_accepted_by_the_java_config():
    java, local = kafka_python.translate_config({
        "bootstrap_servers": ["127.0.0.1:1"], "client_id": "c", "acks": 1,
        "linger_ms": 3, "batch_size": 1000, "compression_type": "snappy", "retries": 2,
        "enable_idempotence": False, "delivery_timeout_ms": 5000, "request_timeout_ms": 1000,
        "value_serializer": str.encode, "key_serializer": None})
    cfg = ProducerConfig(java)
    assert (cfg.client_id, cfg.linger_ms, cfg.batch_size) == ("c", 3, 1000)
    assert local["value_serializer"] is str.encode


@pytest.mark.parametrize("key, closest", [
    ("partitioner", "partitioner.class"),
    ("api_version", "ApiVersions"),
    ("ssl_cafile", "ssl.truststore.location"),
    ("allow_auto_create_topics", "auto.create.topics.enable"),
    ("socket_options", "send.buffer.bytes"),
])
def test_kafka_python_keywords_without_equivalent_are_refused(key, closest):
    with pytest.raises(ConfigError) as info:
        kafka_python.translate_config({key: object()})
    assert key in str(info.value) and closest in str(info.value)


def test_kafka_python_unknown_keyword_suggests_close_matches():
    with pytest.raises(ConfigError, match="did you mean linger_ms"):
        kafka_python.translate_config({"linger_msec": 5})


def test_kafka_python_serializer_must_be_callable():
    with pytest.raises(ConfigError, match="value_serializer"):
        kafka_python.translate_config({"value_serializer": "json"})


def test_confluent_error_shapes():
    from fastprod.errors import NotEnoughReplicasError, ProducerFencedError
    err = confluent.KafkaError.from_exception(NotEnoughReplicasError("few"))
    assert (err.code(), err.name(), err.retriable(), err.fatal()) == (
        19, "NOT_ENOUGH_REPLICAS", True, False)
    assert err == confluent.KafkaError.NOT_ENOUGH_REPLICAS
    fenced = confluent.KafkaError.from_exception(ProducerFencedError("fenced"))
    assert fenced.fatal() and not fenced.txn_requires_abort()
    exc = confluent.KafkaException(err)
    assert exc.args[0] is err and "few" in str(exc)
    from fastprod.errors import KafkaTimeoutError
    timeout = confluent.KafkaError.from_exception(KafkaTimeoutError("late"))
    assert timeout.code() == confluent.KafkaError._MSG_TIMED_OUT == -192
    assert timeout.name() == "_MSG_TIMED_OUT"

"""fastprod.interceptors (Java's ProducerInterceptor chain), without a broker."""

from __future__ import annotations

import logging

import pytest

from fastprod.errors import ConfigError
from fastprod.interceptors import Interceptors, ProducerRecord


class Upper:
    configured: dict | None = None

    def configure(self, configs):
        self.configured = configs

    def on_send(self, record):
        return record._replace(value=record.value.upper())


class Suffix:
    def __init__(self):
        self.acks = []
        self.closed = False

    def on_send(self, record):
        return record._replace(value=record.value + b"!")

    def on_acknowledgement(self, metadata, error):
        self.acks.append((metadata, error))

    def close(self):
        self.closed = True


class Broken:
    def on_send(self, record):
        raise RuntimeError("on_send broke")

    def on_acknowledgement(self, metadata, error):
        raise RuntimeError("on_acknowledgement broke")

    def close(self):
        raise RuntimeError("close broke")


def test_on_send_runs_in_order_and_each_sees_the_previous_result():
    chain = Interceptors.from_config((Upper, Suffix()), {"client.id": "c"})
    out = chain.on_send(ProducerRecord("t", b"abc", key=b"k"))
    assert out == ProducerRecord("t", b"ABC!", key=b"k")


def test_classes_are_instantiated_and_configured_instances_used_as_given():
    instance = Suffix()
    chain = Interceptors.from_config((Upper, instance), {"client.id": "c"})
    upper, given = chain._all
    assert isinstance(upper, Upper) and upper.configured == {"client.id": "c"}
    assert given is instance


def test_no_interceptors_is_none():
    assert Interceptors.from_config((), {}) is None


def test_an_object_with_neither_method_is_a_config_error():
    with pytest.raises(ConfigError, match="neither on_send nor on_acknowledgement"):
        Interceptors.from_config((object(),), {})


def test_a_raising_on_send_is_logged_and_the_record_goes_on(caplog):
    chain = Interceptors([Upper(), Broken(), Suffix()])
    with caplog.at_level(logging.ERROR, logger="fastprod"):
        out = chain.on_send(ProducerRecord("t", b"abc"))
    assert out.value == b"ABC!"  # what Upper returned, then Suffix
    assert any("on_send" in r.getMessage() for r in caplog.records)


def test_acknowledgements_run_before_the_callback_even_if_one_raises(caplog):
    seen = Suffix()
    order = []
    chain = Interceptors([Broken(), seen])
    callback = chain.wrap_callback(lambda md, err: order.append(("user", md, err)))
    error = RuntimeError("failed")
    with caplog.at_level(logging.ERROR, logger="fastprod"):
        callback(None, error)
    assert seen.acks == [(None, error)]
    assert order == [("user", None, error)]
    assert any("on_acknowledgement" in r.getMessage() for r in caplog.records)
    chain.wrap_callback(None)("md", None)  # no user callback: interceptors only
    assert seen.acks[-1] == ("md", None)


def test_close_closes_each_and_survives_one_that_raises(caplog):
    last = Suffix()
    chain = Interceptors([Broken(), last])
    with caplog.at_level(logging.ERROR, logger="fastprod"):
        chain.close()
    assert last.closed

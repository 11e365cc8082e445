"""sasl.jaas.config in Java's syntax (fastprod/cluster/sasl/jaas.py)."""

from __future__ import annotations

import pytest

from fastprod.cluster.sasl.jaas import PLAIN_MODULE, parse_jaas_config
from fastprod.errors import ConfigError


def test_plain_line() -> None:
    e = parse_jaas_config(f'{PLAIN_MODULE} required username="alice" password="a-secret";')
    assert e.module == PLAIN_MODULE and e.flag == "required"
    assert e.options == {"username": "alice", "password": "a-secret"}


def test_quotes_escapes_bare_words_and_whitespace() -> None:
    e = parse_jaas_config(
        "  org.x.Module   OPTIONAL\n  a=bare_value.1  b='single \"q\"'\n"
        '  c="esc \\" and \\\\ and ;"  d=""  ;  ')
    assert e.flag == "optional"
    assert e.options == {"a": "bare_value.1", "b": 'single "q"', "c": 'esc " and \\ and ;',
                         "d": ""}


def test_module_without_options() -> None:
    assert parse_jaas_config("org.x.M sufficient;").options == {}


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("org.x.M", "control flag"),
    ("org.x.M maybe;", "not one of"),
    ('org.x.M required username="alice"', "must end with ';'"),
    ('org.x.M required username "alice";', "expected '='"),
    ('org.x.M required password="hunter2', "not closed"),
    ('org.x.M required a="1" a="2";', "twice"),
    ('org.x.M required; org.y.N required;', "exactly one"),
])
def test_malformed(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_jaas_config(text)


def test_errors_and_repr_never_show_values() -> None:
    with pytest.raises(ConfigError) as info:
        parse_jaas_config('org.x.M required password="hunter2" ')
    assert "hunter2" not in str(info.value)
    e = parse_jaas_config('org.x.M required password="hunter2";')
    assert "hunter2" not in repr(e) and "password" in repr(e)

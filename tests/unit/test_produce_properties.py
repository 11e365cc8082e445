"""fastprod.produce.properties: Java .properties files and -X options."""

from __future__ import annotations

import pytest

from fastprod.produce.properties import (PropertiesError, load_properties, parse_option,
                                         parse_properties)


def test_the_three_separators_comments_and_blank_lines():
    text = ("# a comment\n! another\n\nbootstrap.servers=localhost:9092\n"
            "linger.ms : 20\nacks all\n   compression.type   =   zstd  \n")
    assert parse_properties(text) == {"bootstrap.servers": "localhost:9092", "linger.ms": "20",
                                      "acks": "all", "compression.type": "zstd  "}


def test_continuation_lines_and_escapes():
    text = ("client.id = a\\\n    b\\\n  c\n"
            "weird\\=key\\:x = v\\tw\\u0041\n"
            "two.backslashes = end\\\\\n"
            "next = 1\n")
    props = parse_properties(text)
    assert props["client.id"] == "abc"
    assert props["weird=key:x"] == "v\twA"
    assert props["two.backslashes"] == "end\\"  # an even count does not continue the line
    assert props["next"] == "1"


def test_key_without_value_and_later_keys_win():
    assert parse_properties("flag\nx=1\nx=2\n") == {"flag": "", "x": "2"}


def test_bad_unicode_escape_names_the_line(tmp_path):
    path = tmp_path / "client.properties"
    path.write_text("a=1\nb=\\u12\n")
    with pytest.raises(PropertiesError, match=r"client\.properties:2: malformed \\uXXXX"):
        load_properties(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PropertiesError, match="cannot read config file .*nope.properties"):
        load_properties(tmp_path / "nope.properties")


def test_latin1_file_is_read_as_java_does(tmp_path):
    path = tmp_path / "p.properties"
    path.write_bytes(b"client.id=caf\xe9\n")
    assert load_properties(path) == {"client.id": "caf\u00e9"}


@pytest.mark.parametrize("text,expected", [("linger.ms=20", ("linger.ms", "20")),
                                           (" acks = all ", ("acks", "all")),
                                           ("x=a=b", ("x", "a=b")), ("empty=", ("empty", ""))])
def test_parse_option(text, expected):
    assert parse_option(text) == expected


@pytest.mark.parametrize("text", ["linger.ms", "=5", ""])
def test_parse_option_refuses_what_is_not_key_value(text):
    with pytest.raises(PropertiesError, match="expected KEY=VALUE"):
        parse_option(text)

"""Java ``.properties`` files and ``-X key=value`` options for ``fastprod produce``.

The file people already pass to kafka-console-producer (``--producer.config``) is in
java.util.Properties' format: ``key=value``, ``key: value`` or ``key value``; ``#`` and
``!`` start comments; a line ending in an odd number of backslashes continues on the
next; backslash escapes (``\\t``, ``\\n``, ``\\uXXXX``, ``\\=``, ...) as Java reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_SEPARATOR = re.compile(r"(?<!\\)(?:\\\\)*[=:\s]")


class PropertiesError(ValueError):
    """A properties file or a -X option that cannot be read; the message names where."""


def _unescape(text: str, where: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 == len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            digits = text[i + 2:i + 6]
            if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise PropertiesError(f"{where}: malformed \\uXXXX escape {text[i:i + 6]!r}")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))  # Java drops the backslash before any other char
        i += 2
    return "".join(out)


def _logical_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(first physical line number, joined text) per logical line."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        text = line.lstrip(" \t\f") if pending else line
        if not pending:
            stripped = text.lstrip(" \t\f")
            if not stripped or stripped[0] in "#!":
                continue
            text = stripped
            start = number
        trailing = len(text) - len(text.rstrip("\\"))
        if trailing % 2 == 1:  # an odd count: the last backslash continues the line
            pending.append(text[:-1])
            continue
        pending.append(text)
        yield start, "".join(pending)
        pending = []
    if pending:
        yield start, "".join(pending)


def parse_properties(text: str, source: str = "<properties>") -> dict[str, str]:
    """Parse the text of a Java properties file into a dict (later keys win)."""
    props: dict[str, str] = {}
    for number, line in _logical_lines(text.splitlines()):
        where = f"{source}:{number}"
        m = _SEPARATOR.search(line)
        if m is None:
            key, value = line, ""
        else:
            key = line[:m.end() - 1]
            rest = line[m.end() - 1:]
            # the separator: whitespace, then at most one '=' or ':', then whitespace
            rest = rest.lstrip(" \t\f")
            if rest[:1] in ("=", ":"):
                rest = rest[1:].lstrip(" \t\f")
            value = rest
        props[_unescape(key, where)] = _unescape(value, where)
    return props


def load_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a properties file; PropertiesError names the file when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PropertiesError(f"cannot read config file {os.fspath(path)}: "
                              f"{e.strerror or e}") from None
    # Java 9+ reads properties files as UTF-8, falling back to ISO-8859-1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_properties(text, os.fspath(path))


def parse_option(text: str) -> tuple[str, str]:
    """One ``-X key=value``: PropertiesError when there is no '=' or no key."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise PropertiesError(f"-X {text!r}: expected KEY=VALUE with a Java producer config "
                              f"name, e.g. -X linger.ms=20")
    return key, value.strip()

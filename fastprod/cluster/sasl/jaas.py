"""sasl.jaas.config in Java's syntax: one login module line.

    org.apache.kafka.common.security.plain.PlainLoginModule required
        username="alice" password="alice-secret";

A module class, a control flag (required, requisite, sufficient, optional), options
``name=value`` (the value quoted, with backslash escapes, or a bare word), and a ``;``.
A client uses exactly one module, as Java's JaasContext.loadClientContext demands.
Error messages name the position and what was expected, never an option's value: the
line holds passwords.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastprod.errors import ConfigError

__all__ = ["JaasEntry", "parse_jaas_config", "PLAIN_MODULE", "SCRAM_MODULE",
           "OAUTHBEARER_MODULE"]

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTHBEARER_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
_FLAGS = ("required", "requisite", "sufficient", "optional")


@dataclass(frozen=True)
class JaasEntry:
    module: str
    flag: str
    # repr=False: the options hold the passwords
    options: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"JaasEntry({self.module!r}, {self.flag!r}, options={sorted(self.options)})"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self, what: str) -> str:
        """A bare token: letters, digits and ``._-$/:`` (a class name, a flag, a key)."""
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                             or self.text[self.pos] in "._-$/:+"):
            self.pos += 1
        if start == self.pos:
            raise self.error(f"expected {what}")
        return self.text[start:self.pos]

    def quoted(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif ch == quote:
                return "".join(out)
            else:
                out.append(ch)
        raise self.error("a quoted value is not closed")

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"sasl.jaas.config: {what} at character {self.pos + 1} "
                           "(expected: <LoginModule class> required key=\"value\" ...;)")


def parse_jaas_config(text: str) -> JaasEntry:
    """The one login module of a client's sasl.jaas.config; ConfigError if malformed."""
    lex = _Lexer(text)
    if lex.at_end():
        raise ConfigError("sasl.jaas.config is empty: give a login module line such as "
                          f"'{PLAIN_MODULE} required username=\"...\" password=\"...\";'")
    module = lex.word("a login module class name")
    flag = lex.word("a control flag (required, requisite, sufficient or optional)")
    if flag.lower() not in _FLAGS:
        raise lex.error(f"the control flag {flag!r} is not one of {', '.join(_FLAGS)}")
    options: dict[str, str] = {}
    while True:
        ch = lex.peek()
        if ch == ";":
            lex.pos += 1
            break
        if ch == "":
            raise lex.error("the login module line must end with ';'")
        key = lex.word("an option name or ';'")
        if lex.peek() != "=":
            raise lex.error(f"expected '=' after option {key!r}")
        lex.pos += 1
        ch = lex.peek()
        if ch in ("\"", "'"):
            value = lex.quoted()
        else:
            value = lex.word(f"a value for option {key!r}")
        if key in options:
            raise lex.error(f"option {key!r} is given twice")
        options[key] = value
    if not lex.at_end():
        raise ConfigError("sasl.jaas.config: a client takes exactly one login module, but "
                          "more text follows the first ';'")
    return JaasEntry(module, flag.lower(), options)

"""SASL PLAIN (RFC 4616): one message, authzid empty, then the broker says yes or no."""

from __future__ import annotations

from fastprod.config import Password
from fastprod.errors import ConfigError


class PlainClient:
    mechanism = "PLAIN"

    def __init__(self, username: str, password: Password) -> None:
        if "\0" in username or "\0" in password.value:
            raise ConfigError("SASL PLAIN: the user name and password must not contain NUL")
        self.username = username
        self._password = password
        self.complete = False

    def initial(self) -> bytes:
        return b"\0" + self.username.encode() + b"\0" + self._password.value.encode()

    def respond(self, challenge: bytes) -> bytes | None:
        # The broker's answer to PLAIN is empty; an error comes as an error code.
        self.complete = True
        return None

    def __repr__(self) -> str:
        return f"<PlainClient user={self.username!r}>"

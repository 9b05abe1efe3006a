# -*- test-case-name: tests.smtp.test_auth -*-
"""
SASL exchanges for AUTH PLAIN, LOGIN and CRAM-MD5 (RFC 4616, the LOGIN
draft, RFC 2195): turn client lines into the secret to check, without ever
logging what the client sent.
"""

from __future__ import annotations

import base64
import binascii
import secrets

import attrs

from postal.smtp import replies as r
from postal.smtp.replies import Reply

__all__ = ["SASLExchange", "Secret", "KeySecret", "CramSecret", "decode_base64", "MECHANISMS", "start"]

MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")


class BadBase64(ValueError):
    """The client's SASL line is not base64."""


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadBase64() from None


@attrs.frozen
class KeySecret:
    """PLAIN/LOGIN: the password, which Postal treats as an SMTP credential key."""

    key: str
    mechanism: str


@attrs.frozen
class CramSecret:
    username: str
    challenge: bytes
    digest: str
    mechanism: str = "CRAM-MD5"


Secret = KeySecret | CramSecret


@attrs.define
class SASLExchange:
    """
    One AUTH exchange in progress.  L{step} takes the client's next line and
    returns either the next challenge, a final error reply, or a secret.
    """

    mechanism: str
    hostname: str
    _stage: int = 0
    _challenge: bytes = b""

    def first(self, initial: str | None) -> Reply | Secret:
        if self.mechanism == "CRAM-MD5":
            if initial:
                return r.R501_SYNTAX
            self._challenge = f"<{secrets.token_hex(10)}@{self.hostname}>".encode()
            return r.challenge(base64.b64encode(self._challenge).decode())
        if initial is None:
            return r.R334_EMPTY if self.mechanism == "PLAIN" else r.R334_USERNAME
        return self.step(initial)

    def step(self, line: str) -> Reply | Secret:
        if line.strip() == "*":
            return r.R501_AUTH_CANCELLED
        try:
            data = decode_base64(line) if line.strip() not in ("", "=") else b""
        except BadBase64:
            return r.R501_BAD_BASE64
        if self.mechanism == "PLAIN":
            return _plain(data)
        if self.mechanism == "LOGIN":
            self._stage += 1
            if self._stage == 1:
                return r.R334_PASSWORD  # the username is not used
            return KeySecret(data.decode("utf-8", "replace"), "LOGIN")
        username, _, digest = data.decode("utf-8", "replace").strip().rpartition(" ")
        if not username or not digest:
            return r.R535_DENIED
        return CramSecret(username, self._challenge, digest)


def _plain(data: bytes) -> Reply | Secret:
    parts = data.split(b"\0")
    if len(parts) != 3 or not parts[2]:
        return r.R535_PROTOCOL_ERROR
    return KeySecret(parts[2].decode("utf-8", "replace"), "PLAIN")


def start(mechanism: str, hostname: str) -> SASLExchange | None:
    """A new exchange, or None for a mechanism we do not offer."""
    if mechanism not in MECHANISMS:
        return None
    return SASLExchange(mechanism, hostname)

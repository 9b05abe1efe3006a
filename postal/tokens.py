# -*- test-case-name: tests.test_tokens -*-
"""
Random identifiers in Postal's formats (postal-behaviour.md section 15.4).
"""

from __future__ import annotations

import secrets
import string
import uuid

__all__ = [
    "random_alphanumeric", "new_uuid", "server_token", "credential_key",
    "message_token", "log_id", "dkim_identifier_string", "verification_token", "route_token",
]

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits


def random_alphanumeric(length: int, alphabet: str = _ALNUM) -> str:
    """
    C{length} characters drawn uniformly from C{alphabet}, from one read of
    the system's CSPRNG (bytes past the largest multiple of the alphabet's
    size are rejected, so there is no modulo bias).
    """
    size = len(alphabet)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < length:
        out.extend(alphabet[b % size] for b in secrets.token_bytes(2 * (length - len(out))) if b < limit)
    return "".join(out[:length])


def new_uuid() -> str:
    return str(uuid.uuid4())


def server_token() -> str:
    """6 lowercase letters: the return-path local part and tracking URL part."""
    return random_alphanumeric(6, string.ascii_lowercase)


def credential_key() -> str:
    """24 alphanumerics, as Postal makes SMTP and API keys."""
    return random_alphanumeric(24)


def message_token() -> str:
    return random_alphanumeric(16)


def route_token() -> str:
    return random_alphanumeric(8, string.ascii_lowercase + string.digits)


def log_id() -> str:
    """8 uppercase alphanumerics: SMTP trace ids and delivery "Support Ref"s."""
    return random_alphanumeric(8, _UPPER_ALNUM)


def verification_token() -> str:
    return random_alphanumeric(32)


def dkim_identifier_string() -> str:
    """The 6-character part of a C{postal-xxxxxx} DKIM selector (lower case: DNS labels are case-insensitive)."""
    return random_alphanumeric(6, string.ascii_lowercase + string.digits)

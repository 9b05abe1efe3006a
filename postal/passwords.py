# -*- test-case-name: tests.test_passwords -*-
"""
Password digests for users: scrypt from the standard library, stored in a
self-describing form (C{scrypt$N$r$p$salt$hash}, base64 parts) so the cost
can be raised later without breaking stored digests.

Blocking and deliberately slow (tens of milliseconds): call it from the
CLI or a thread, never on the reactor thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from postal.errors import InvalidInput

__all__ = ["MINIMUM_LENGTH", "hash_password", "verify_password", "check_password_rules"]

#: Postal's rule for user passwords.
MINIMUM_LENGTH = 8

_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32


def check_password_rules(password: str) -> None:
    """@raise InvalidInput: the password is shorter than Postal allows."""
    if len(password) < MINIMUM_LENGTH:
        raise InvalidInput(f"password must be at least {MINIMUM_LENGTH} characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=256 * n * r + 1024 * 1024)


def hash_password(password: str) -> str:
    """A new salted digest of C{password} (after checking Postal's rules)."""
    check_password_rules(password)
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, _N, _R, _P, _HASH_BYTES)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether C{password} matches the C{stored} digest; False for anything unreadable."""
    if not stored:
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        actual = _scrypt(password, salt, n, r, p, len(expected))
    except (ValueError, OverflowError):
        return False
    return hmac.compare_digest(actual, expected)

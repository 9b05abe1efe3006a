# -*- test-case-name: tests.test_passwords -*-
"""Password digests: salted scrypt in a self-describing format."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from postal.errors import InvalidInput
from postal.passwords import hash_password, verify_password


class PasswordTests(SynchronousTestCase):
    """L{hash_password} and L{verify_password}."""

    def test_round_trip(self) -> None:
        """A digest verifies its own password and no other."""
        digest = hash_password("correct horse")
        self.assertTrue(verify_password("correct horse", digest))
        self.assertFalse(verify_password("correct horsE", digest))

    def test_salted_and_self_describing(self) -> None:
        """Two digests of one password differ, and each names its algorithm and cost."""
        first, second = hash_password("password1"), hash_password("password1")
        self.assertNotEqual(first, second)
        self.assertTrue(first.startswith("scrypt$16384$8$1$"))

    def test_too_short(self) -> None:
        """Postal's minimum of 8 characters is enforced."""
        self.assertRaises(InvalidInput, hash_password, "short")

    def test_unreadable_digest(self) -> None:
        """A missing, foreign or corrupt digest never verifies."""
        for stored in (None, "", "$2a$12$abcdefghijklmnopqrstuv", "scrypt$x$8$1$AA==$AA==", "scrypt$16384$8$1$!!$!!"):
            self.assertFalse(verify_password("password1", stored), stored)

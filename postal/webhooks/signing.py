# -*- test-case-name: tests.webhooks.test_signing -*-
"""
Signing Postal's outgoing HTTP requests (webhooks and HTTP endpoints):
C{X-Postal-Signature} is base64 RSA-SHA1 (PKCS#1 v1.5) over the exact body,
C{X-Postal-Signature-256} the same with SHA-256, C{X-Postal-Signature-KID}
the key's JWK kid.
"""

from __future__ import annotations

import base64

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from postal.keys import key_id, load_private_key

__all__ = ["RequestSigner", "signer_from_file"]


@attrs.frozen
class RequestSigner:
    """Signs request bodies with the installation's signing key."""

    _key: rsa.RSAPrivateKey

    @property
    def kid(self) -> str:
        return key_id(self._key)

    def sign(self, body: bytes, algorithm: hashes.HashAlgorithm) -> str:
        """Base64 (no newlines) of the PKCS#1 v1.5 signature of C{body}."""
        return base64.b64encode(self._key.sign(body, padding.PKCS1v15(), algorithm)).decode("ascii")

    def headers(self, body: bytes) -> dict[bytes, bytes]:
        """The three signature headers for C{body}."""
        return {
            b"X-Postal-Signature": self.sign(body, hashes.SHA1()).encode("ascii"),
            b"X-Postal-Signature-256": self.sign(body, hashes.SHA256()).encode("ascii"),
            b"X-Postal-Signature-KID": self.kid.encode("ascii"),
        }


def signer_from_file(path: str) -> RequestSigner:
    """A signer for the PEM key at C{path} (blocking: call at start-up only)."""
    with open(path, "rb") as f:
        return RequestSigner(load_private_key(f.read()))

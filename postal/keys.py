# -*- test-case-name: tests.test_keys -*-
"""
RSA keys: DKIM keys, the installation's signing key, and the public-key
forms Postal publishes (the DKIM C{p=} value, JWKS).
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "generate_rsa_key_pem", "load_private_key", "public_key_b64", "dkim_record",
    "ensure_signing_key", "key_id", "jwk",
]


def generate_rsa_key_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def public_key_b64(key: rsa.RSAPrivateKey) -> str:
    """The SPKI DER of the public key, base64 on one line (DKIM's C{p=})."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def dkim_record(key: rsa.RSAPrivateKey) -> str:
    return f"v=DKIM1; t=s; h=sha256; p={public_key_b64(key)};"


def key_id(key: rsa.RSAPrivateKey) -> str:
    """Postal's JWK kid: hex SHA-256 of the PKCS#1 RSAPublicKey DER."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha256(der).hexdigest()


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e),
        "kid": key_id(key), "use": "sig", "alg": "RS256",
    }


def ensure_signing_key(path: str) -> bool:
    """Create the signing key at C{path} (mode 0600) unless it exists; True if created."""
    if os.path.exists(path):
        return False
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    pem = generate_rsa_key_pem()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    return True

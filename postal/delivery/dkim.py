# -*- test-case-name: tests.delivery.test_dkim -*-
"""
DKIM signing (RFC 6376, relaxed/relaxed) with C{cryptography}.

dkimpy signs correctly but its RSA is pure Python (about 136 RSA-2048
signatures a second per core); OpenSSL through C{cryptography} is ten times
faster, so we canonicalise and sign here and let the tests verify every
signature with dkimpy.  The signed header list is Postal's
(postal-behaviour.md section 5.5); an Ed25519 key adds a second signature
(RFC 8463).
"""

from __future__ import annotations

import base64
import hashlib
import re

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

__all__ = ["SIGNED_HEADERS", "DKIMKey", "dkim_signature_headers", "split_message", "load_ed25519_key"]

#: Postal's list, in its order; those present in the message are signed.
SIGNED_HEADERS = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc", "mime-version",
    "content-type", "content-transfer-encoding", "resent-to", "resent-cc", "resent-from",
    "resent-sender", "resent-message-id", "in-reply-to", "references", "list-id", "list-help",
    "list-owner", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post",
)

_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


@attrs.frozen
class DKIMKey:
    """One signing identity: C{d=}, C{s=} and the private key."""

    domain: str
    selector: str
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def load_ed25519_key(text: str) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 key from PEM, or from the base64 of its 32-byte seed."""
    stripped = text.strip()
    if stripped.startswith("-----"):
        key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return key
    return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(stripped))


def split_message(message: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folding, without the final CRLF) and the body."""
    message = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        head, body = message, b""
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields, body


def relaxed_header(field: bytes) -> bytes:
    name, _, value = field.partition(b":")
    value = _FOLD.sub(b"", value)
    value = _WSP_RUN.sub(b" ", value).strip(b" \r\n")
    return name.strip().lower() + b":" + value


def relaxed_body(body: bytes) -> bytes:
    if b"\t" not in body and b"  " not in body and b" \r\n" not in body and not body.endswith(b" "):
        # Nothing to collapse or trim on any line: only trailing empty lines go.
        stripped = body.rstrip(b"\r\n")
        while body.endswith(b"\r\n\r\n"):
            body = body[:-2]
        return b"" if not stripped else (body if body.endswith(b"\r\n") else body + b"\r\n")
    lines = body.split(b"\r\n")
    canonical = [_WSP_RUN.sub(b" ", line).rstrip(b" ") for line in lines]
    while canonical and canonical[-1] == b"":
        canonical.pop()
    if not canonical:
        return b""
    return b"\r\n".join(canonical) + b"\r\n"


def _select_headers(fields: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Names and canonical fields to sign; repeated fields are taken bottom-up (RFC 6376 5.4.2)."""
    by_name: dict[bytes, list[bytes]] = {}
    for field in fields:
        by_name.setdefault(field.partition(b":")[0].strip().lower(), []).append(field)
    names: list[bytes] = []
    canonical: list[bytes] = []
    for wanted in SIGNED_HEADERS:
        key = wanted.encode("ascii")
        for field in reversed(by_name.get(key, [])):
            names.append(key)
            canonical.append(relaxed_header(field))
    return names, canonical


def _fold_b64(value: str) -> str:
    return "\r\n\t".join(value[i:i + 72] for i in range(0, len(value), 72))


def _sign(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(hashlib.sha256(data).digest())


def dkim_signature_headers(message: bytes, keys: list[DKIMKey], timestamp: int) -> bytes:
    """
    The C{DKIM-Signature} fields (with CRLFs) to prepend to C{message}, one
    per key, each signing the same headers and body.
    """
    fields, body = split_message(message)
    body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode("ascii")
    names, canonical = _select_headers(fields)
    signed_data = b"".join(c + b"\r\n" for c in canonical)
    out = []
    for dkim_key in keys:
        algorithm = "rsa-sha256" if isinstance(dkim_key.key, rsa.RSAPrivateKey) else "ed25519-sha256"
        prefix = (
            f"DKIM-Signature: v=1; a={algorithm}; c=relaxed/relaxed; d={dkim_key.domain};\r\n"
            f"\ts={dkim_key.selector}; t={timestamp}; bh={body_hash};\r\n"
            f"\th={':'.join(n.decode('ascii') for n in names)};\r\n\tb="
        )
        to_sign = signed_data + relaxed_header(prefix.encode("ascii"))
        signature = base64.b64encode(_sign(dkim_key.key, to_sign)).decode("ascii")
        out.append(prefix + _fold_b64(signature) + "\r\n")
    return "".join(out).encode("ascii")

# -*- test-case-name: tests.webhooks.test_signing -*-
"""
Webhook signatures verified by an independent verifier (C{cryptography}
directly): against the JWKS key, and against the C{p=} value of
C{postal default-dkim-record} wrapped as django-anymail wraps it.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from twisted.trial.unittest import SynchronousTestCase

from postal.keys import dkim_record, jwk, load_private_key
from postal.webhooks.signing import RequestSigner
from tests.web.apihelpers import SIGNING_PEM

BODY = b'{"event":"MessageSent","timestamp":1714400000.5,"payload":{"x":"\xc3\xa9"},"uuid":"u"}'


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def public_key_from_jwk(key: dict[str, str]) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(_b64url_int(key["e"]), _b64url_int(key["n"])).public_key()


def public_key_from_dkim_record(record: str) -> rsa.RSAPublicKey:
    """What django-anymail does with POSTAL_WEBHOOK_KEY (the C{p=} value)."""
    p_value = record.split("p=", 1)[1].rstrip(";")
    pem = "-----BEGIN PUBLIC KEY-----\n" + p_value + "\n-----END PUBLIC KEY-----"
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


class SigningTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.key = load_private_key(SIGNING_PEM)
        self.headers = RequestSigner(self.key).headers(BODY)

    def test_sha1_against_dkim_record(self) -> None:
        """X-Postal-Signature verifies as RSA-SHA1 with the default DKIM record's key."""
        public = public_key_from_dkim_record(dkim_record(self.key))
        signature = base64.b64decode(self.headers[b"X-Postal-Signature"], validate=True)
        public.verify(signature, BODY, padding.PKCS1v15(), hashes.SHA1())

    def test_sha256_against_jwks(self) -> None:
        """X-Postal-Signature-256 verifies as RSA-SHA256 with the JWKS key."""
        public = public_key_from_jwk(jwk(self.key))
        public.verify(base64.b64decode(self.headers[b"X-Postal-Signature-256"]), BODY,
                      padding.PKCS1v15(), hashes.SHA256())

    def test_kid(self) -> None:
        """The KID header is the JWKS kid."""
        self.assertEqual(self.headers[b"X-Postal-Signature-KID"].decode(), jwk(self.key)["kid"])

    def test_tampered_body_fails(self) -> None:
        """A changed body does not verify."""
        from cryptography.exceptions import InvalidSignature

        public = public_key_from_dkim_record(dkim_record(self.key))
        signature = base64.b64decode(self.headers[b"X-Postal-Signature"])
        self.assertRaises(InvalidSignature, public.verify, signature, BODY + b" ",
                          padding.PKCS1v15(), hashes.SHA1())

    def test_no_newlines(self) -> None:
        """Signatures are strict base64 on one line."""
        for name in (b"X-Postal-Signature", b"X-Postal-Signature-256"):
            self.assertNotIn(b"\n", self.headers[name])

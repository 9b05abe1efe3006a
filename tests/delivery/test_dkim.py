# -*- test-case-name: tests.delivery.test_dkim -*-
"""
Tests for L{postal.delivery.dkim}: every signature made with C{cryptography}
is verified by dkimpy, an independent implementation.
"""

from __future__ import annotations

import base64
import re

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from postal.delivery.dkim import DKIMKey, dkim_signature_headers, relaxed_body, relaxed_header
from postal.keys import dkim_record, load_private_key
from tests.delivery.helpers import dkim_key_pem, sample_message


def _verify(message: bytes, records: dict[bytes, bytes]) -> bool:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return records[name]
    verifier = dkim.DKIM(message)
    try:
        results = [verifier.verify(idx=i, dnsfunc=dnsfunc) for i in range(message.count(b"DKIM-Signature:"))]
    except dkim.ValidationError:
        return False
    return bool(results) and all(results)


class SignatureTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.rsa = load_private_key(dkim_key_pem())
        self.records = {b"postal-abc._domainkey.example.com.": dkim_record(self.rsa).encode()}

    def sign(self, message: bytes, keys: list[DKIMKey]) -> bytes:
        return dkim_signature_headers(message, keys, 1_700_000_000) + message

    def test_rsa_signature_verifies(self) -> None:
        """An RSA-2048 relaxed/relaxed signature verifies with dkimpy."""
        signed = self.sign(sample_message(), [DKIMKey("example.com", "postal-abc", self.rsa)])
        self.assertTrue(_verify(signed, self.records))
        self.assertIn(b"c=relaxed/relaxed", signed)

    def test_signed_header_list_is_postals(self) -> None:
        """The h= tag lists the present headers of Postal's list, including List-Unsubscribe."""
        message = sample_message().replace(b"MIME-Version", b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version")
        signed = self.sign(message, [DKIMKey("example.com", "postal-abc", self.rsa)])
        h = re.search(rb"\sh=([^;]*);", signed).group(1)  # type: ignore[union-attr]
        self.assertEqual(h, b"from:subject:date:message-id:to:mime-version:content-type:"
                            b"list-unsubscribe:list-unsubscribe-post")
        self.assertTrue(_verify(signed, self.records))

    def test_tampered_body_fails(self) -> None:
        """Changing the body after signing makes verification fail (the verifier is not a rubber stamp)."""
        signed = self.sign(sample_message(), [DKIMKey("example.com", "postal-abc", self.rsa)])
        self.assertFalse(_verify(signed.replace(b"Body line one", b"Body line 1"), self.records))

    def test_ed25519_second_signature(self) -> None:
        """With an Ed25519 key the message carries two signatures and both verify."""
        ed = ed25519.Ed25519PrivateKey.generate()
        public = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.records[b"postal-abc-ed25519._domainkey.example.com."] = (
            b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public))
        signed = self.sign(sample_message(), [
            DKIMKey("example.com", "postal-abc", self.rsa),
            DKIMKey("example.com", "postal-abc-ed25519", ed),
        ])
        self.assertEqual(signed.count(b"DKIM-Signature:"), 2)
        self.assertIn(b"a=ed25519-sha256", signed)
        self.assertTrue(_verify(signed, self.records))

    def test_bare_lf_and_folded_headers(self) -> None:
        """Messages with bare LF line ends and folded headers sign as they will be sent (CRLF)."""
        message = (b"From: a@example.com\nSubject: a long\n  folded   subject\nTo: b@dest.test\n\n"
                   b"line  with   spaces   \n\n\n")
        headers = dkim_signature_headers(message, [DKIMKey("example.com", "postal-abc", self.rsa)], 1)
        wire = headers + message.replace(b"\n", b"\r\n")
        self.assertTrue(_verify(wire, self.records))


class CanonicalisationTests(SynchronousTestCase):
    @settings(derandomize=True, deadline=None, max_examples=200)
    @given(st.binary(max_size=200))
    def test_relaxed_body_is_idempotent(self, body: bytes) -> None:
        """Relaxed body canonicalisation applied twice changes nothing more."""
        body = body.replace(b"\r", b"").replace(b"\n", b"\r\n")
        once = relaxed_body(body)
        self.assertEqual(relaxed_body(once), once)

    @settings(derandomize=True, deadline=None, max_examples=300)
    @given(st.lists(st.sampled_from([b"a", b" ", b"\t", b"b c", b"", b"x  y"]), max_size=12))
    def test_relaxed_body_matches_rfc_rules(self, lines: list[bytes]) -> None:
        """The fast path and the line-by-line rules of RFC 6376 3.4.4 give the same bytes."""
        body = b"\r\n".join(lines)
        expected = [re.sub(rb"[ \t]+", b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
        while expected and expected[-1] == b"":
            expected.pop()
        self.assertEqual(relaxed_body(body), b"\r\n".join(expected) + b"\r\n" if expected else b"")

    def test_relaxed_header(self) -> None:
        """Header names are lower-cased, folds removed and runs of spaces collapsed."""
        self.assertEqual(relaxed_header(b"SubJect :  a\r\n\t b  "), b"subject:a b")

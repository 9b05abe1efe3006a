# -*- test-case-name: tests.intake.test_headers -*-
"""Header parsing, the Received header, loop detection, sender authorisation."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from postal.intake.headers import authorised_domain, is_loop, parse_headers, received_header
from postal.intake.values import DomainInfo

DOMAINS = [DomainInfo(1, "example.com"), DomainInfo(2, "example.org")]


class HeaderTests(SynchronousTestCase):
    def test_folded_headers_unfolded(self) -> None:
        """Folded header lines are joined; names are lower-cased; the body is ignored."""
        fields = parse_headers(b"From: A\r\n <a@example.com>\r\nSubject: x\r\n\r\nFrom: body@x\r\n")
        self.assertEqual(fields, [("from", "A <a@example.com>"), ("subject", "x")])

    def test_received(self) -> None:
        """Postal's Received header, and its privacy-mode form."""
        self.assertEqual(received_header("helo.test", "192.0.2.1", "mx.test", 0.0, False),
                         b"Received: from helo.test (192.0.2.1 [192.0.2.1]) by mx.test with SMTP; "
                         b"Thu, 01 Jan 1970 00:00:00 +0000\r\n")
        self.assertEqual(received_header("helo.test", "192.0.2.1", "mx.test", 0.0, True),
                         b"Received: by mx.test with SMTP; Thu, 01 Jan 1970 00:00:00 +0000\r\n")

    def test_received_sanitises_helo(self) -> None:
        """CR, LF and brackets from the client's HELO cannot reach the header."""
        self.assertNotIn(b"\n", received_header("a\r\nX-Evil: 1", "1.2.3.4", "mx", 0.0, False)[:-2])

    def test_loop(self) -> None:
        """Five Received headers naming us is a loop; four is not."""
        four = [("received", "from x by mx.test with SMTP")] * 4
        self.assertFalse(is_loop(four, "mx.test"))
        self.assertTrue(is_loop(four + four[:1], "mx.test"))

    def test_every_from_must_be_verified(self) -> None:
        """All From addresses must be in verified domains."""
        self.assertEqual(authorised_domain([("from", "a@example.com, b@example.org")], DOMAINS, False), DOMAINS[0])
        self.assertIsNone(authorised_domain([("from", "a@example.com, b@evil.test")], DOMAINS, False))
        self.assertIsNone(authorised_domain([], DOMAINS, False))

    def test_sender_with_allow_sender(self) -> None:
        """With allow_sender, a verified Sender authorises any From."""
        fields = [("from", "x@evil.test"), ("sender", "a@example.org")]
        self.assertIsNone(authorised_domain(fields, DOMAINS, False))
        self.assertEqual(authorised_domain(fields, DOMAINS, True), DOMAINS[1])

    def test_use_for_any(self) -> None:
        """A verified domain marked use_for_any authorises any From address."""
        any_domain = DomainInfo(3, "a.test", True)
        self.assertEqual(authorised_domain([("from", "x@any.test")], [any_domain], False), any_domain)

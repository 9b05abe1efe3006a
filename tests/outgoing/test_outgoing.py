# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
The API's logic units: address handling, From/Sender authorisation, base64,
the MIME writer read back by the inspection parser, and group commit.
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.db.messages import NewTransaction, StoredMessage
from postal.outgoing.addresses import split_address_list, strip_name_from_address
from postal.outgoing.authorisation import authenticated_domain_for_address, authenticated_domain_from_headers
from postal.outgoing.composer import compose_message, decode_attachments, decode_base64
from postal.outgoing.errors import InvalidBase64
from postal.outgoing.inspection import parse_message, ruby_base64
from postal.outgoing.values import AttachmentSpec, SendMessageRequest


@attrs.frozen
class _Domain:
    name: str
    use_for_any: bool = False


class AddressTests(SynchronousTestCase):
    def test_strip_name(self) -> None:
        """Display names, angle brackets and comments go; case stays."""
        self.assertEqual(strip_name_from_address('"Doe, J" <John@Example.com>'), "John@Example.com")
        self.assertEqual(strip_name_from_address("a@b.test (work)"), "a@b.test")
        self.assertEqual(strip_name_from_address("  a@b.test "), "a@b.test")

    def test_split(self) -> None:
        """Strings split on commas like Ruby's split (trailing empties dropped); lists stay."""
        self.assertEqual(split_address_list("a@x, b@x,c@x,"), ["a@x", "b@x", "c@x"])
        self.assertEqual(split_address_list(""), [])
        self.assertEqual(split_address_list(["a, b"]), ["a, b"])


class AuthorisationTests(SynchronousTestCase):
    def test_domain_match(self) -> None:
        """An address is authorised by its own verified domain, case-insensitively."""
        domains = [_Domain("acme.test"), _Domain("other.test")]
        self.assertEqual(authenticated_domain_for_address(domains, "Me <me@ACME.test>"), domains[0])
        self.assertIsNone(authenticated_domain_for_address(domains, "me@evil.test"))
        self.assertIsNone(authenticated_domain_for_address(domains, "no-at-sign"))

    def test_use_for_any(self) -> None:
        """A use-for-any domain authorises any address."""
        domains = [_Domain("acme.test"), _Domain("any.test", use_for_any=True)]
        self.assertEqual(authenticated_domain_for_address(domains, "me@evil.test"), domains[1])

    def test_headers_all_from_must_pass(self) -> None:
        """Every From address must be authorised; Sender counts only when allowed."""
        domains = [_Domain("acme.test")]
        self.assertIsNone(authenticated_domain_from_headers(domains, ["a@acme.test", "b@evil.test"], [], False))
        self.assertIsNone(authenticated_domain_from_headers(domains, ["b@evil.test"], ["s@acme.test"], False))
        self.assertEqual(authenticated_domain_from_headers(domains, ["b@evil.test"], ["s@acme.test"], True), domains[0])
        self.assertIsNone(authenticated_domain_from_headers(domains, [], [], False))


class ComposerTests(SynchronousTestCase):
    def test_base64(self) -> None:
        """Whitespace and missing padding are forgiven; other junk is an error."""
        self.assertEqual(decode_base64("aGVs\nbG8", "x"), b"hello")
        self.assertRaises(InvalidBase64, decode_base64, "a*b=", "x")

    def test_round_trip(self) -> None:
        """What the writer makes, the inspection parser reads back (non-ASCII included)."""
        request = SendMessageRequest(
            to=("Zoë <z@x.test>",), from_="Acme <me@acme.test>", subject="Grüße", plain_body="Héllo\nworld",
            html_body="<p>Héllo</p>", headers=(("X-Bad\nName", "v"), ("X-Ok", "line\r\nbreak")),
            attachments=(AttachmentSpec("résumé.txt", "text/plain", "aGk="),))
        raw = compose_message(request, decode_attachments(request.attachments), "u-1@rp.test", "from api", 0.0)
        parsed = parse_message(raw)
        self.assertEqual(parsed.plain_body, "Héllo\r\nworld")
        self.assertEqual(parsed.html_body, "<p>Héllo</p>")
        self.assertEqual(parsed.headers["subject"], ["Grüße"])
        self.assertEqual(parsed.headers["to"], ["Zoë <z@x.test>"])
        self.assertEqual(parsed.headers["x-ok"], ["line  break"])
        self.assertNotIn("x-bad\nname", parsed.headers)
        self.assertEqual([(a.filename, a.data) for a in parsed.attachments], [("résumé.txt", b"hi")])
        self.assertTrue(raw.isascii())

    def test_ruby_base64(self) -> None:
        """Ruby's encode64 writes 60-character lines, each with a newline."""
        encoded = ruby_base64(b"x" * 100)
        self.assertEqual([len(line) for line in encoded.split("\n")], [60, 60, 16, 0])
        self.assertEqual(encoded.replace("\n", ""), "eHh4" * 33 + "eA==")



# -*- test-case-name: tests.cli.test_domains -*-
"""C{postal domain add} and C{postal domain check}, with an in-memory resolver."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, select

from postal.db import schema
from postal.dns import CNAMERecord, DNSRecord, MXRecord, TXTRecord
from tests.cli.helpers import CLITestCase

SERVER = "acme/mail"


def as_dns_record(record: dict[str, Any]) -> DNSRecord:
    if record["type"] == "MX":
        return MXRecord(record["priority"], record["value"])
    if record["type"] == "CNAME":
        return CNAMERecord(record["value"])
    return TXTRecord(record["value"])


class DomainAddTests(CLITestCase):
    """C{postal domain add} creates a domain with its own DKIM key and prints what to publish."""

    def setUp(self) -> None:
        super().setUp()
        self.make_server()

    def test_records(self) -> None:
        """The JSON names the selector and lists verification, SPF, DKIM, return-path and MX records."""
        data = self.ok("domain", "add", SERVER, "Example.COM")
        self.assertEqual(data["name"], "example.com")
        self.assertRegex(data["dkim_selector"], r"^postal-[a-z0-9]{6}$")
        self.assertFalse(data["verified"])
        records = data["records"]
        self.assertEqual([(r["type"], r["name"]) for r in records], [
            ("TXT", "example.com"), ("TXT", "example.com"),
            ("TXT", f"{data['dkim_selector']}._domainkey.example.com"),
            ("CNAME", "psrp.example.com"), ("MX", "example.com"), ("MX", "example.com"),
        ])
        self.assertRegex(records[0]["value"], r"^postal-verification [A-Za-z0-9]{32}$")
        self.assertEqual(records[1]["value"], "v=spf1 a mx include:spf.postal.example.com ~all")
        self.assertRegex(records[2]["value"], r"^v=DKIM1; t=s; h=sha256; p=MIIBIjAN[A-Za-z0-9+/=]+;$")
        self.assertEqual(records[3]["value"], "rp.postal.example.com")
        self.assertEqual([(r["value"], r["priority"]) for r in records[4:]],
                         [("mx1.postal.test", 10), ("mx2.postal.test", 10)])

    def test_verified(self) -> None:
        """--verified skips verification: no verification record is asked for."""
        data = self.ok("domain", "add", SERVER, "example.com", "--verified")
        self.assertTrue(data["verified"])
        self.assertEqual([r["purpose"] for r in data["records"]], ["spf", "dkim", "return_path", "mx", "mx"])

    def test_text_output(self) -> None:
        """Without --json the records are printed one per line, TXT values quoted."""
        out = self.cli("domain", "add", SERVER, "example.com").out
        self.assertIn('  TXT   example.com  "v=spf1 a mx include:spf.postal.example.com ~all"\n', out)
        self.assertIn("  CNAME psrp.example.com  rp.postal.example.com\n", out)
        self.assertIn("  MX    example.com  10 mx1.postal.test\n", out)

    def test_duplicate(self) -> None:
        """The same domain twice on one server is refused."""
        self.ok("domain", "add", SERVER, "example.com")
        self.assertEqual(self.fails(1, "domain", "add", SERVER, "example.com"),
                         "postal: domain example.com already exists here")

    def test_bad_name(self) -> None:
        """A name that is not a domain name is refused."""
        self.assertEqual(self.fails(1, "domain", "add", SERVER, "not a domain"),
                         "postal: 'not a domain' is not a valid domain name")

    def test_unknown_server(self) -> None:
        """An unknown server is named; a malformed ORG/SERVER is explained."""
        self.assertEqual(self.fails(1, "domain", "add", "acme/nope", "example.com"), "postal: no server acme/nope")
        self.assertEqual(self.fails(1, "domain", "add", "acme", "example.com"), "postal: 'acme' is not ORG/SERVER")


class DomainCheckTests(CLITestCase):
    """C{postal domain check} verifies ownership, runs the four checks and stores them."""

    def setUp(self) -> None:
        super().setUp()
        self.make_server()
        self.added = self.ok("domain", "add", SERVER, "example.com")

    def publish_all(self) -> None:
        for record in self.added["records"]:
            self.zone.add(record["name"], as_dns_record(record))

    def test_all_ok(self) -> None:
        """With every record published the domain is verified and every check is OK."""
        self.publish_all()
        data = self.ok("domain", "check", SERVER, "example.com")
        self.assertEqual(data, {
            "uuid": self.added["uuid"], "name": "example.com", "verified": True,
            "verified_at": 1_700_000_000.0, "dns_checked_at": 1_700_000_000.0,
            "spf_status": "OK", "spf_error": None, "dkim_status": "OK", "dkim_error": None,
            "mx_status": "OK", "mx_error": None, "return_path_status": "OK", "return_path_error": None,
            "dns_ok": True,
        })

    def test_nothing_published(self) -> None:
        """With nothing published the domain stays unverified and the text says what to publish."""
        result = self.cli("domain", "check", SERVER, "example.com")
        self.assertEqual(result.code, 0)
        token_record = self.added["records"][0]["value"]
        selector = self.added["dkim_selector"]
        self.assertEqual(result.out.splitlines(), [
            f'example.com: not verified (publish TXT example.com "{token_record}")',
            "  SPF          Missing  No SPF record exists for this domain",
            f"  DKIM         Missing  No TXT records were returned for {selector}._domainkey.example.com",
            "  MX           Missing  There are no MX records for example.com",
            "  Return path  Missing  There is no return path record at psrp.example.com",
            "DNS needs attention.",
        ])

    def test_results_stored(self) -> None:
        """A later check sees the stored verification; a broken record is reported with Postal's text."""
        self.publish_all()
        self.ok("domain", "check", SERVER, "example.com")
        self.zone.replace("psrp.example.com", CNAMERecord("elsewhere.example.net"))
        self.clock.advance(60)
        data = self.ok("domain", "check", SERVER, "example.com")
        self.assertEqual((data["verified_at"], data["dns_checked_at"]), (1_700_000_000.0, 1_700_000_060.0))
        self.assertEqual(data["return_path_status"], "Invalid")
        self.assertEqual(data["return_path_error"],
                         "There is a CNAME record at psrp.example.com but it points to elsewhere.example.net "
                         "which is incorrect. It should point to rp.postal.example.com.")
        self.assertFalse(data["dns_ok"])

    def test_temporary_failure(self) -> None:
        """A DNS lookup that fails temporarily is an error, and nothing is stored."""
        self.publish_all()
        self.zone.fail("example.com")
        self.assertEqual(self.fails(1, "domain", "check", SERVER, "example.com"),
                         "postal: TXT example.com: DNS server failure (SERVFAIL)")
        engine = create_engine("sqlite:///" + os.path.join(self.folder, "postal.sqlite"))
        self.addCleanup(engine.dispose)
        with engine.connect() as conn:
            row = conn.execute(select(schema.domains)).one()
        self.assertEqual((row.verified_at, row.dns_checked_at, row.spf_status), (None, None, None))

    def test_unknown_domain(self) -> None:
        """A domain the server does not have is named."""
        self.assertEqual(self.fails(1, "domain", "check", SERVER, "other.example"),
                         "postal: no domain other.example on this server")

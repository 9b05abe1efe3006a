# -*- test-case-name: tests.test_domain_checks -*-
"""
Postal's domain DNS checks: statuses and texts with L{FakeResolver}, the
records to publish, and the same checks end to end
through L{TwistedNamesResolver} and a local authoritative DNS server.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from postal.config import DNSSettings
from postal.db.domains import DNSCheckResult, Domain
from postal.dns import CNAMERecord, DNSRecord, DNSTemporaryFailure, MXRecord, TXTRecord, make_resolver
from postal.domain_checks import DomainDNSChecker, PublishedRecord, published_records, to_sentence
from postal.keys import generate_rsa_key_pem
from postal.testing import FakeResolver, Zone
from tests.dnsserver import start_dns_server

SETTINGS = DNSSettings(
    mx_records=("mx1.postal.example.com", "mx2.postal.example.com"),
    spf_include="spf.postal.example.com", return_path_domain="rp.postal.example.com",
)
_KEY = generate_rsa_key_pem()


def make_domain(name: str = "example.com", verified: bool = True, **changes: Any) -> Domain:
    domain = Domain(
        id=1, uuid="u", organization_id=1, server_id=1, name=name, verification_method="DNS",
        verification_token="T" * 32, verified_at=1.0 if verified else None, dkim_private_key=_KEY,
        dkim_identifier_string="abc123", dns_checked_at=None, spf_status=None, spf_error=None,
        dkim_status=None, dkim_error=None, mx_status=None, mx_error=None,
        return_path_status=None, return_path_error=None, use_for_any=False,
    )
    return attrs.evolve(domain, **changes)


def as_dns_record(record: PublishedRecord) -> DNSRecord:
    if record.type == "MX":
        assert record.priority is not None
        return MXRecord(record.priority, record.value)
    if record.type == "CNAME":
        return CNAMERecord(record.value)
    return TXTRecord(record.value)


def publish(zone: Zone, records: Iterable[PublishedRecord]) -> Zone:
    """Put the records Postal asks for into C{zone}, as a careful owner would."""
    for record in records:
        zone.add(record.name, as_dns_record(record))
    return zone


def correct_zone(domain: Domain, settings: DNSSettings = SETTINGS) -> Zone:
    """Every record Postal asks for, the verification TXT included."""
    return publish(Zone(), published_records(attrs.evolve(domain, verified_at=None), settings))


ALL_OK = DNSCheckResult("OK", None, "OK", None, "OK", None, "OK", None)


class PublishedRecordsTests(SynchronousTestCase):
    """The records C{postal domain add} asks the owner to publish."""

    def test_verified_domain(self) -> None:
        """SPF, DKIM (selector postal-xxxxxx), return-path CNAME and one MX per dns.mx_records, priority 10."""
        records = published_records(make_domain(), SETTINGS)
        self.assertEqual([(r.type, r.name) for r in records], [
            ("TXT", "example.com"),
            ("TXT", "postal-abc123._domainkey.example.com"),
            ("CNAME", "psrp.example.com"),
            ("MX", "example.com"),
            ("MX", "example.com"),
        ])
        self.assertEqual(records[0].value, "v=spf1 a mx include:spf.postal.example.com ~all")
        self.assertRegex(records[1].value, r"^v=DKIM1; t=s; h=sha256; p=[A-Za-z0-9+/=]{390,};$")
        self.assertEqual(records[2].value, "rp.postal.example.com")
        self.assertEqual([(r.value, r.priority) for r in records[3:]],
                         [("mx1.postal.example.com", 10), ("mx2.postal.example.com", 10)])

    def test_unverified_domain(self) -> None:
        """An unverified domain is also asked for the verification TXT record first."""
        first = published_records(make_domain(verified=False), SETTINGS)[0]
        self.assertEqual((first.type, first.name, first.value),
                         ("TXT", "example.com", "postal-verification " + "T" * 32))

    def test_to_sentence(self) -> None:
        """Lists read as Rails' to_sentence writes them."""
        self.assertEqual(to_sentence(["a"]), "a")
        self.assertEqual(to_sentence(["a", "b"]), "a and b")
        self.assertEqual(to_sentence(["a", "b", "c"]), "a, b, and c")


class DNSCheckTests(SynchronousTestCase):
    """Each check's status and Postal's text, with an in-memory resolver."""

    def setUp(self) -> None:
        self.domain = make_domain()
        self.zone = correct_zone(self.domain)
        self.checker = DomainDNSChecker(FakeResolver(self.zone), SETTINGS)

    def check(self, settings: DNSSettings = SETTINGS) -> DNSCheckResult:
        checker = DomainDNSChecker(FakeResolver(self.zone), settings)
        return self.successResultOf(checker.check(self.domain))

    def test_all_ok(self) -> None:
        """A domain that published what it was asked to passes every check."""
        result = self.check()
        self.assertEqual(result, ALL_OK)
        self.assertTrue(result.ok)

    def test_spf_missing(self) -> None:
        """No v=spf1 TXT record at the apex: SPF Missing."""
        self.zone.replace("example.com", TXTRecord("google-site-verification=x"),
                          MXRecord(10, "mx1.postal.example.com"), MXRecord(10, "mx2.postal.example.com"))
        result = self.check()
        self.assertEqual((result.spf_status, result.spf_error), ("Missing", "No SPF record exists for this domain"))
        self.assertFalse(result.ok)

    def test_spf_without_include(self) -> None:
        """An SPF record that does not include dns.spf_include: SPF Invalid."""
        self.zone.replace("example.com", TXTRecord("v=spf1 mx -all"))
        result = self.check()
        self.assertEqual((result.spf_status, result.spf_error),
                         ("Invalid", "An SPF record exists but it doesn't include spf.postal.example.com"))

    def test_spf_include_among_others(self) -> None:
        """The include may sit anywhere in the record, with a + qualifier, in any case."""
        self.zone.replace("example.com", TXTRecord("v=spf1 ip4:192.0.2.1 +INCLUDE:spf.postal.example.com -all"))
        self.assertEqual(self.check().spf_status, "OK")

    def test_spf_similar_include(self) -> None:
        """An include of a longer name that merely starts with dns.spf_include is not enough."""
        self.zone.replace("example.com", TXTRecord("v=spf1 include:spf.postal.example.com.evil.net ~all"))
        self.assertEqual(self.check().spf_status, "Invalid")

    def test_nxdomain_is_missing(self) -> None:
        """A domain that does not exist in DNS has every record Missing."""
        self.domain = make_domain("gone.example.org")
        result = self.check()
        self.assertEqual(
            (result.spf_status, result.dkim_status, result.mx_status, result.return_path_status),
            ("Missing", "Missing", "Missing", "Missing"),
        )
        self.assertEqual(result.dkim_error, "No TXT records were returned for postal-abc123._domainkey.gone.example.org")
        self.assertEqual(result.mx_error, "There are no MX records for gone.example.org")
        self.assertEqual(result.return_path_error, "There is no return path record at psrp.gone.example.org")

    def test_dkim_two_records(self) -> None:
        """Two TXT records at the DKIM name: DKIM Invalid."""
        self.zone.add("postal-abc123._domainkey.example.com", TXTRecord("v=DKIM1; p=old;"))
        result = self.check()
        self.assertEqual((result.dkim_status, result.dkim_error), (
            "Invalid",
            "There are 2 records for at postal-abc123._domainkey.example.com. There should only be one.",
        ))

    def test_dkim_wrong_key(self) -> None:
        """A DKIM record with another key: DKIM Invalid."""
        self.zone.replace("postal-abc123._domainkey.example.com", TXTRecord("v=DKIM1; t=s; h=sha256; p=AAAA;"))
        result = self.check()
        self.assertEqual((result.dkim_status, result.dkim_error), (
            "Invalid",
            "The DKIM record at postal-abc123._domainkey.example.com does not match the record we have "
            "provided. Please check it has been copied correctly.",
        ))

    def test_dkim_without_final_semicolon(self) -> None:
        """A DKIM record copied without its final ';' (or with spaces around it) still matches."""
        name = "postal-abc123._domainkey.example.com"
        expected = published_records(self.domain, SETTINGS)[1].value
        self.zone.replace(name, TXTRecord(" " + expected.rstrip(";") + " "))
        self.assertEqual(self.check().dkim_status, "OK")

    def test_mx_none_point_to_us(self) -> None:
        """MX records that all point elsewhere: MX Missing, with Postal's text."""
        self.zone.replace("example.com", TXTRecord("v=spf1 include:spf.postal.example.com ~all"),
                          MXRecord(10, "mail.elsewhere.net"))
        result = self.check()
        self.assertEqual((result.mx_status, result.mx_error),
                         ("Missing", "You have MX records but none of them point to us."))
        self.assertTrue(result.ok)

    def test_mx_some_missing(self) -> None:
        """Only some of dns.mx_records present: MX Invalid naming the missing ones."""
        self.zone.replace("example.com", TXTRecord("v=spf1 include:spf.postal.example.com ~all"),
                          MXRecord(10, "MX1.postal.example.com."))
        result = self.check()
        self.assertEqual((result.mx_status, result.mx_error),
                         ("Invalid", "MX record for mx2.postal.example.com are missing and are required."))
        settings = attrs.evolve(SETTINGS, mx_records=("mx1.postal.example.com", "a.example.net", "b.example.net"))
        self.assertEqual(self.check(settings).mx_error,
                         "MX records for a.example.net and b.example.net are missing and are required.")

    def test_return_path_wrong_target(self) -> None:
        """A return-path CNAME pointing elsewhere: Invalid, naming both targets."""
        self.zone.replace("psrp.example.com", CNAMERecord("Bounces.Example.NET."))
        result = self.check()
        self.assertEqual((result.return_path_status, result.return_path_error), (
            "Invalid",
            "There is a CNAME record at psrp.example.com but it points to bounces.example.net which is "
            "incorrect. It should point to rp.postal.example.com.",
        ))
        self.assertFalse(result.ok)

    def test_return_path_missing_is_acceptable(self) -> None:
        """No return-path record: Missing, and the domain's DNS still counts as OK."""
        self.zone.remove("psrp.example.com")
        result = self.check()
        self.assertEqual(result.return_path_status, "Missing")
        self.assertTrue(result.ok)

    def test_temporary_failure(self) -> None:
        """A lookup that fails temporarily fails the check instead of reporting Missing."""
        self.zone.fail("postal-abc123._domainkey.example.com")
        failure = self.failureResultOf(self.checker.check(self.domain), DNSTemporaryFailure)
        self.assertIn("SERVFAIL", str(failure.value))

    def test_verify(self) -> None:
        """Ownership is proven by the TXT record '<domain_verify_prefix> <token>' at the apex."""
        domain = make_domain(verified=False)
        self.assertTrue(self.successResultOf(self.checker.verify(domain)))
        self.zone.replace("example.com", TXTRecord("postal-verification wrong"))
        self.assertFalse(self.successResultOf(self.checker.verify(domain)))
        self.zone.remove("example.com")
        self.assertFalse(self.successResultOf(self.checker.verify(domain)))


class LocalDNSServerCheckTests(TestCase):
    """The checks through the real resolver and a local authoritative DNS server."""

    def setUp(self) -> None:
        self.domain = make_domain()
        self.server = start_dns_server(self, correct_zone(self.domain))
        settings = attrs.evolve(SETTINGS, nameservers=(self.server.nameserver,), timeout=2.0)
        self.checker = DomainDNSChecker(make_resolver(settings, reactor), SETTINGS)

    async def test_correct_domain(self) -> None:
        """A domain whose records are right is OK on every check and proves its ownership."""
        self.assertEqual(await self.checker.check(self.domain), ALL_OK)
        self.assertTrue(await self.checker.verify(make_domain(verified=False)))

    async def test_broken_domain(self) -> None:
        """Wrong and missing records give Postal's statuses and texts."""
        zone = self.server.zone
        zone.replace("example.com", TXTRecord("v=spf1 -all"), MXRecord(5, "mx1.postal.example.com"))
        zone.remove("postal-abc123._domainkey.example.com")
        zone.replace("psrp.example.com", CNAMERecord("elsewhere.example.net"))
        result = await self.checker.check(self.domain)
        self.assertEqual(result, DNSCheckResult(
            "Invalid", "An SPF record exists but it doesn't include spf.postal.example.com",
            "Missing", "No TXT records were returned for postal-abc123._domainkey.example.com",
            "Invalid", "MX record for mx2.postal.example.com are missing and are required.",
            "Invalid", "There is a CNAME record at psrp.example.com but it points to elsewhere.example.net "
                       "which is incorrect. It should point to rp.postal.example.com.",
        ))

    def test_server_failure(self) -> Any:
        """SERVFAIL from the server fails the check with L{DNSTemporaryFailure}."""
        self.server.zone.fail("psrp.example.com")
        return self.assertFailure(self.checker.check(self.domain), DNSTemporaryFailure)

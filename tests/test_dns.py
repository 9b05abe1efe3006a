# -*- test-case-name: tests.test_dns -*-
"""
The resolver contract, run against L{FakeResolver} and against
L{TwistedNamesResolver} talking to a local authoritative server that
serves the same zone; plus what only the real resolver does (TCP
fallback, timeouts, nameserver order, resolv.conf).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from postal.config import DNSSettings
from postal.dns import (
    AddressRecord, CNAMERecord, DNSTemporaryFailure, IResolver, MXRecord, NonexistentDomain,
    TXTRecord, lookup_timeouts, make_resolver, parse_nameservers,
)
from postal.testing import FakeResolver, Zone
from tests.dnsserver import LocalDNSServer, start_dns_server

LONG_TEXT = "v=DKIM1; t=s; h=sha256; p=" + "A" * 390 + ";"


def example_zone() -> Zone:
    zone = Zone()
    zone.add("example.com",
             MXRecord(20, "mx2.example.net"), MXRecord(10, "MX1.Example.NET"),
             TXTRecord("v=spf1 a mx include:spf.postal.example.com ~all"),
             TXTRecord("postal-verification abc"),
             AddressRecord("192.0.2.10"), AddressRecord("2001:db8::10"))
    zone.add("postal-abc123._domainkey.example.com", TXTRecord(LONG_TEXT))
    zone.add("psrp.example.com", CNAMERecord("rp.postal.example.com"))
    zone.add("rp.postal.example.com", TXTRecord("v=spf1 -all"), AddressRecord("192.0.2.20"))
    zone.add("empty.example.com")
    zone.add("null-mx.example.com", MXRecord(0, "."))
    zone.add("xn--bcher-kva.example", AddressRecord("192.0.2.30"))
    zone.add("broken.example.com", TXTRecord("never served"))
    zone.fail("broken.example.com")
    return zone


class _ResolverContractMixin:
    """Behaviour every L{IResolver} has; subclasses provide C{resolver_for(zone)}."""

    assertEqual: Any
    assertTrue: Any
    failureResultOf: Any

    def resolver_for(self, zone: Zone) -> IResolver:
        raise NotImplementedError()

    def setUp(self) -> None:
        self.resolver = self.resolver_for(example_zone())

    def test_provides_interface(self) -> None:
        """The resolver provides L{IResolver}."""
        self.assertTrue(verifyObject(IResolver, self.resolver))

    async def test_mx_sorted_lower_case(self) -> None:
        """MX records come lowest priority first, host names in lower case without the dot."""
        records = await self.resolver.lookup_mx("example.com")
        self.assertEqual(records, (MXRecord(10, "mx1.example.net"), MXRecord(20, "mx2.example.net")))

    async def test_txt(self) -> None:
        """Every TXT record at the name is returned."""
        records = await self.resolver.lookup_txt("example.com")
        self.assertEqual(sorted(records, key=lambda r: r.text), [
            TXTRecord("postal-verification abc"),
            TXTRecord("v=spf1 a mx include:spf.postal.example.com ~all"),
        ])

    async def test_long_txt_joined(self) -> None:
        """A TXT record longer than 255 bytes (a DKIM key) comes back as one string."""
        records = await self.resolver.lookup_txt("postal-abc123._domainkey.example.com")
        self.assertEqual(records, (TXTRecord(LONG_TEXT),))

    async def test_addresses(self) -> None:
        """A and AAAA lookups return the addresses of their family."""
        self.assertEqual(await self.resolver.lookup_a("example.com"), (AddressRecord("192.0.2.10"),))
        self.assertEqual(await self.resolver.lookup_aaaa("example.com"), (AddressRecord("2001:db8::10"),))

    async def test_cname_not_followed(self) -> None:
        """A CNAME lookup returns the alias at the name itself."""
        records = await self.resolver.lookup_cname("psrp.example.com")
        self.assertEqual(records, (CNAMERecord("rp.postal.example.com"),))

    async def test_other_types_follow_cname(self) -> None:
        """TXT and A lookups of an alias return the target's records."""
        self.assertEqual(await self.resolver.lookup_txt("psrp.example.com"), (TXTRecord("v=spf1 -all"),))
        self.assertEqual(await self.resolver.lookup_a("psrp.example.com"), (AddressRecord("192.0.2.20"),))

    async def test_no_records_of_type(self) -> None:
        """A name that exists without records of the type gives an empty tuple."""
        self.assertEqual(await self.resolver.lookup_mx("empty.example.com"), ())
        self.assertEqual(await self.resolver.lookup_cname("example.com"), ())

    async def test_case_and_trailing_dot(self) -> None:
        """Names are matched case-insensitively, with or without the root dot."""
        self.assertEqual(len(await self.resolver.lookup_mx("EXAMPLE.com.")), 2)

    async def test_null_mx(self) -> None:
        """A null MX (RFC 7505, C{MX 0 .}) comes back as priority 0 with an empty host."""
        self.assertEqual(await self.resolver.lookup_mx("null-mx.example.com"), (MXRecord(0, ""),))

    async def test_international_name(self) -> None:
        """International names are looked up in punycode."""
        self.assertEqual(await self.resolver.lookup_a("Bücher.example"), (AddressRecord("192.0.2.30"),))

    def test_nxdomain(self) -> Deferred[None]:
        """An unknown name fails with L{NonexistentDomain}."""
        return self.assertFailure(self.resolver.lookup_mx("nowhere.example.com"), NonexistentDomain)  # type: ignore[no-any-return,attr-defined]

    def test_servfail(self) -> Deferred[None]:
        """A name whose server fails gives L{DNSTemporaryFailure}."""
        return self.assertFailure(self.resolver.lookup_txt("broken.example.com"), DNSTemporaryFailure)  # type: ignore[no-any-return,attr-defined]


class FakeResolverTests(_ResolverContractMixin, TestCase):
    """The contract, against L{FakeResolver}."""

    def resolver_for(self, zone: Zone) -> IResolver:
        return FakeResolver(zone)

    def test_records_queries(self) -> None:
        """The fake records each lookup as (type, normalised name)."""
        resolver = FakeResolver(Zone())
        self.failureResultOf(resolver.lookup_a("Host.Example."), NonexistentDomain)
        self.failureResultOf(resolver.lookup_a("x"), NonexistentDomain)
        self.assertEqual(resolver.queries, [("A", "host.example"), ("A", "x")])


def _settings(*servers: LocalDNSServer, timeout: float = 2.0) -> DNSSettings:
    return DNSSettings(nameservers=tuple(s.nameserver for s in servers), timeout=timeout)


class TwistedNamesResolverTests(_ResolverContractMixin, TestCase):
    """The contract, against the real resolver and a local authoritative server."""

    def resolver_for(self, zone: Zone) -> IResolver:
        self.server = start_dns_server(self, zone)
        return make_resolver(_settings(self.server), reactor)

    async def test_tcp_fallback(self) -> None:
        """An answer too large for UDP is fetched again over TCP."""
        zone = Zone()
        texts = [f"record-{i}-" + "x" * 90 for i in range(8)]
        zone.add("big.example.com", *(TXTRecord(t) for t in texts))
        server = start_dns_server(self, zone)
        records = await make_resolver(_settings(server), reactor).lookup_txt("big.example.com")
        self.assertEqual(sorted(r.text for r in records), sorted(texts))
        self.assertEqual([q[0] for q in server.queries], ["udp", "tcp"])

    async def test_timeout(self) -> None:
        """A server that never answers gives L{DNSTemporaryFailure} after Postal's retries."""
        self.server.silent.add("example.com")
        resolver = make_resolver(_settings(self.server, timeout=0.1), reactor)
        with self.assertRaises(DNSTemporaryFailure) as caught:
            await resolver.lookup_mx("example.com")
        self.assertIn("timed out", str(caught.exception))
        self.assertEqual(len(self.server.queries), 3)

    async def test_next_nameserver(self) -> None:
        """When the first nameserver does not answer, the next one is asked."""
        dead = start_dns_server(self, example_zone())
        dead.silent.add("example.com")
        resolver = make_resolver(_settings(dead, self.server, timeout=0.2), reactor)
        self.assertEqual(len(await resolver.lookup_mx("example.com")), 2)
        self.assertEqual(len(dead.queries), 1)


class ResolverConfigurationTests(SynchronousTestCase):
    """How L{make_resolver} reads C{dns.*}."""

    def test_timeouts(self) -> None:
        """Lookups are tried with dns.timeout, then twice with half of it (as Postal)."""
        self.assertEqual(lookup_timeouts(4.0), (4.0, 2.0, 2.0))

    def test_parse_nameservers(self) -> None:
        """host:port entries, IPv6 literals in brackets or not, become address pairs."""
        self.assertEqual(parse_nameservers(["127.0.0.1:5353", "[::1]:53", "::1:54"]),
                         [("127.0.0.1", 5353), ("::1", 53), ("::1", 54)])

    def test_missing_resolv_conf(self) -> None:
        """Without dns.nameservers or a resolv.conf, the local resolver 127.0.0.1:53 is used (as glibc)."""
        clock = Clock()
        resolver = make_resolver(DNSSettings(resolv_conf_path=self.mktemp()), clock)  # type: ignore[arg-type]
        self.assertEqual(resolver._client.dynServers, [("127.0.0.1", 53)])
        resolver.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_resolv_conf_read(self) -> None:
        """With no dns.nameservers, the nameservers come from dns.resolv_conf_path."""
        clock = Clock()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("nameserver 192.0.2.53\n")
        resolver = make_resolver(DNSSettings(resolv_conf_path=path), clock)  # type: ignore[arg-type]
        self.addCleanup(resolver.stop)
        self.assertEqual(resolver._client.dynServers, [("192.0.2.53", 53)])

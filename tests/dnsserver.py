# -*- test-case-name: tests.test_dns -*-
"""
A local authoritative DNS server for integration tests.

L{start_dns_server} serves a L{postal.testing.Zone} on 127.0.0.1 over UDP
and TCP on one free port, with C{twisted.names}' own server.  Point
C{dns.nameservers} at L{LocalDNSServer.nameserver} and every lookup the
code under test makes (domain checks, MX lookups for delivery, ...) is
answered from the zone, which the test may change at any time.

Like a real server it answers NXDOMAIN for unknown names, follows CNAMEs,
truncates UDP answers over 512 bytes (so clients retry over TCP), answers
SERVFAIL for the zone's failing names and never answers names in
C{silent} (the client times out).
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.names import dns, server

from postal.dns import (
    CNAMERecord, DNSRecord, DNSTemporaryFailure, MXRecord, NonexistentDomain,
    TXTRecord, normalise_name,
)
from postal.testing import RECORD_TYPES, Zone

__all__ = ["LocalDNSServer", "start_dns_server"]

_UDP_LIMIT = 512


def _wire(name: str) -> bytes:
    """A name as it goes on the wire ("." and "" are the root)."""
    return normalise_name(name).encode("ascii")


def _payload(record: DNSRecord) -> tuple[int, Any]:
    if isinstance(record, MXRecord):
        return dns.MX, dns.Record_MX(record.priority, _wire(record.host), ttl=60)
    if isinstance(record, TXTRecord):
        data = record.text.encode("utf-8")
        chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
        return dns.TXT, dns.Record_TXT(*chunks, ttl=60)
    if isinstance(record, CNAMERecord):
        return dns.CNAME, dns.Record_CNAME(_wire(record.target), ttl=60)
    if record.version == 4:
        return dns.A, dns.Record_A(record.address, ttl=60)
    return dns.AAAA, dns.Record_AAAA(record.address, ttl=60)


def _rr(owner: str, record: DNSRecord) -> dns.RRHeader:
    record_type, payload = _payload(record)
    return dns.RRHeader(name=_wire(owner), type=record_type, cls=dns.IN, ttl=60, payload=payload, auth=True)


class _ZoneServerFactory(server.DNSServerFactory):  # type: ignore[misc]
    """Answers every query from the zone (no recursion, no cache)."""

    def __init__(self, zone: Zone, silent: set[str]) -> None:
        super().__init__()
        self.zone = zone
        self.silent = silent
        self.queries: list[tuple[str, str, str]] = []

    def handleQuery(self, message: dns.Message, protocol: Any, address: Any) -> None:
        query = message.queries[0]
        name = normalise_name(query.name.name.decode("ascii"))
        query_type = dns.QUERY_TYPES.get(query.type, str(query.type))
        self.queries.append(("udp" if address is not None else "tcp", query_type, name))
        if name in self.silent:
            return
        answers: list[dns.RRHeader] = []
        rcode = dns.OK
        try:
            if query_type in RECORD_TYPES:
                self.zone.answer(name, query_type)
                answers = [_rr(owner, r) for owner, r in self.zone.cname_chain(name, query_type)]
        except NonexistentDomain:
            rcode = dns.ENAME
        except DNSTemporaryFailure:
            rcode = dns.ESERVER
        response = self._responseFromMessage(message=message, rCode=rcode, answers=answers)
        response.auth = 1
        self.sendReply(protocol, response, address)

    def sendReply(self, protocol: Any, message: dns.Message, address: Any) -> None:
        message.maxSize = 0
        if address is not None and len(message.toStr()) > _UDP_LIMIT:
            message.answers, message.trunc = [], 1
        super().sendReply(protocol, message, address)
        if address is None:
            # One query per TCP connection keeps client connections from
            # outliving the test.
            protocol.transport.loseConnection()


@attrs.define
class LocalDNSServer:
    """A running server: its zone, port, silent names and the queries it saw."""

    zone: Zone
    port: int
    silent: set[str]
    _factory: _ZoneServerFactory
    _listening: list[IListeningPort]

    @property
    def nameserver(self) -> str:
        """The C{dns.nameservers} entry for this server."""
        return f"127.0.0.1:{self.port}"

    @property
    def queries(self) -> list[tuple[str, str, str]]:
        """C{(transport, type, name)} for every query received, in order."""
        return self._factory.queries

    def stop(self) -> defer.Deferred[Any]:
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in self._listening])


def start_dns_server(case: Any, zone: Zone | None = None, reactor: Any = None) -> LocalDNSServer:
    """
    Serve C{zone} on 127.0.0.1 (UDP and TCP, same free port) until the
    test C{case} ends.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor
        reactor = default_reactor
    zone = Zone() if zone is None else zone
    silent: set[str] = set()
    factory = _ZoneServerFactory(zone, silent)
    for _ in range(20):
        udp = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        port = udp.getHost().port
        try:
            tcp = reactor.listenTCP(port, factory, interface="127.0.0.1")
        except CannotListenError:
            udp.stopListening()
            continue
        dns_server = LocalDNSServer(zone, port, silent, factory, [udp, tcp])
        case.addCleanup(dns_server.stop)
        return dns_server
    raise RuntimeError("no free port for a UDP+TCP DNS server")

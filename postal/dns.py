# -*- test-case-name: tests.test_dns -*-
"""
DNS lookups: one resolver interface, implemented over C{twisted.names}.

Everything that looks names up (MX for delivery, TXT/CNAME/MX for domain
checks, A/AAAA for hosts) goes through L{IResolver}, so tests use
L{postal.testing.FakeResolver} and integration tests point
C{dns.nameservers} at a local server (C{tests/dnsserver.py}).

Outcomes are kept apart because callers act on them differently:

  - records found: a tuple of frozen records;
  - the name exists but has no records of that type: an empty tuple;
  - the name does not exist (NXDOMAIN): L{NonexistentDomain}, a hard
    failure for delivery;
  - the lookup could not be answered (SERVFAIL, REFUSED, timeout, no
    nameserver): L{DNSTemporaryFailure}, worth trying again later.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Callable, Sequence, TypeVar, Union

import attrs
from twisted.internet.defer import Deferred, TimeoutError as DeferredTimeoutError
from twisted.internet.error import ConnectError, ConnectionLost
from twisted.internet.interfaces import IReactorCore
from twisted.names import client, dns, error as dns_error
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from postal.config import DNSSettings
from postal.errors import PostalError

__all__ = [
    "IResolver", "TwistedNamesResolver", "make_resolver",
    "MXRecord", "TXTRecord", "AddressRecord", "CNAMERecord", "DNSRecord",
    "DNSLookupError", "NonexistentDomain", "DNSTemporaryFailure",
    "normalise_name", "lookup_timeouts",
]


@attrs.frozen
class MXRecord:
    """One MX record: C{host} is lower case without the trailing dot."""

    priority: int
    host: str


@attrs.frozen
class TXTRecord:
    """One TXT record, its character-strings joined as SPF and DKIM require."""

    text: str


@attrs.frozen
class AddressRecord:
    """One A or AAAA record."""

    address: str

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version


@attrs.frozen
class CNAMERecord:
    """One CNAME record: C{target} is lower case without the trailing dot."""

    target: str


DNSRecord = Union[MXRecord, TXTRecord, AddressRecord, CNAMERecord]


class DNSLookupError(PostalError):
    """A lookup did not produce records; the message names the query."""


class NonexistentDomain(DNSLookupError):
    """The name does not exist (NXDOMAIN): asking again will not help."""


class DNSTemporaryFailure(DNSLookupError):
    """No usable answer (SERVFAIL, REFUSED, timeout, no nameserver): try again later."""


class IResolver(Interface):
    """
    Non-blocking lookups of the record types Postal uses.  Each method
    returns a Deferred firing with a tuple of records (empty when the name
    exists without such records), or failing with L{NonexistentDomain} or
    L{DNSTemporaryFailure}.  CNAMEs are followed for every type but CNAME.
    """

    def lookup_mx(name: str) -> Deferred[tuple[MXRecord, ...]]:
        """MX records, lowest priority value first."""

    def lookup_txt(name: str) -> Deferred[tuple[TXTRecord, ...]]:
        """TXT records."""

    def lookup_a(name: str) -> Deferred[tuple[AddressRecord, ...]]:
        """IPv4 addresses."""

    def lookup_aaaa(name: str) -> Deferred[tuple[AddressRecord, ...]]:
        """IPv6 addresses."""

    def lookup_cname(name: str) -> Deferred[tuple[CNAMERecord, ...]]:
        """The CNAME records at exactly C{name} (not followed)."""


def normalise_name(name: str) -> str:
    """Lower case, no trailing dot, international names in punycode."""
    stripped = name.strip().rstrip(".")
    try:
        return stripped.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return stripped.lower()


def lookup_timeouts(timeout: float) -> tuple[float, ...]:
    """Postal's retry schedule: C{dns.timeout}, then half of it twice."""
    return (timeout, timeout / 2, timeout / 2)


def parse_nameservers(nameservers: Sequence[str]) -> list[tuple[str, int]]:
    """C{host:port} strings (IPv6 as C{[::1]:53} or C{::1:53}) to address pairs."""
    servers = []
    for item in nameservers:
        host, _, port = item.rpartition(":")
        servers.append((host.strip("[]"), int(port)))
    return servers


_T = TypeVar("_T")

#: The public C{twisted.names} lookup method for each record type.
_CLIENT_METHODS = {
    dns.MX: "lookupMailExchange",
    dns.TXT: "lookupText",
    dns.A: "lookupAddress",
    dns.AAAA: "lookupIPV6Address",
    dns.CNAME: "lookupCanonicalName",
}


def _name_text(name: dns.Name) -> str:
    return normalise_name(name.name.decode("ascii", "replace"))


def _mx(rr: Any) -> MXRecord:
    return MXRecord(priority=rr.payload.preference, host=_name_text(rr.payload.name))


def _txt(rr: Any) -> TXTRecord:
    return TXTRecord(text=b"".join(rr.payload.data).decode("utf-8", "replace"))


def _a(rr: Any) -> AddressRecord:
    return AddressRecord(address=rr.payload.dottedQuad())


def _cname(rr: Any) -> CNAMERecord:
    return CNAMERecord(target=_name_text(rr.payload.name))


def _aaaa(rr: Any) -> AddressRecord:
    return AddressRecord(address=socket.inet_ntop(socket.AF_INET6, rr.payload.address))


@implementer(IResolver)
@attrs.define
class TwistedNamesResolver:
    """
    L{IResolver} over a C{twisted.names.client.Resolver}: UDP, falling
    back to TCP for truncated answers, retried on Postal's schedule.
    """

    _client: client.Resolver
    _timeouts: tuple[float, ...]

    def lookup_mx(self, name: str) -> Deferred[tuple[MXRecord, ...]]:
        d = self._lookup(name, dns.MX, _mx)
        d.addCallback(lambda records: tuple(sorted(records, key=lambda r: r.priority)))
        return d

    def lookup_txt(self, name: str) -> Deferred[tuple[TXTRecord, ...]]:
        return self._lookup(name, dns.TXT, _txt)

    def lookup_a(self, name: str) -> Deferred[tuple[AddressRecord, ...]]:
        return self._lookup(name, dns.A, _a)

    def lookup_aaaa(self, name: str) -> Deferred[tuple[AddressRecord, ...]]:
        return self._lookup(name, dns.AAAA, _aaaa)

    def lookup_cname(self, name: str) -> Deferred[tuple[CNAMERecord, ...]]:
        wanted = normalise_name(name)

        def at_name(records: tuple[tuple[str, CNAMERecord], ...]) -> tuple[CNAMERecord, ...]:
            return tuple(record for owner, record in records if owner == wanted)

        d = self._lookup(name, dns.CNAME, lambda rr: (_name_text(rr.name), _cname(rr)))
        return d.addCallback(at_name)

    def stop(self) -> None:
        """Stop re-reading resolv.conf (only scheduled when no nameservers are configured)."""
        call = getattr(self._client, "_parseCall", None)
        if call is not None and call.active():
            call.cancel()

    def _lookup(self, name: str, record_type: int, convert: Callable[[Any], _T]) -> Deferred[tuple[_T, ...]]:
        query_name = normalise_name(name)
        label = f"{dns.QUERY_TYPES.get(record_type, record_type)} {query_name}"
        method = getattr(self._client, _CLIENT_METHODS[record_type])
        d: Deferred[Any] = method(query_name, self._timeouts)

        def answers(result: tuple[list[Any], list[Any], list[Any]]) -> tuple[_T, ...]:
            return tuple(convert(rr) for rr in result[0] if rr.type == record_type)

        def failed(reason: Failure) -> Failure:
            raise _translate(reason, label)

        d.addCallbacks(answers, failed)
        return d


def _translate(reason: Failure, label: str) -> DNSLookupError:
    """Map twisted.names failures onto our two error types."""
    if reason.check(dns_error.DNSNameError):
        return NonexistentDomain(f"{label}: no such domain (NXDOMAIN)")
    if reason.check(DeferredTimeoutError):
        return DNSTemporaryFailure(f"{label}: DNS query timed out")
    if reason.check(dns_error.DNSServerError):
        return DNSTemporaryFailure(f"{label}: DNS server failure (SERVFAIL)")
    if reason.check(dns_error.DNSQueryRefusedError):
        return DNSTemporaryFailure(f"{label}: DNS query refused")
    if reason.check(dns_error.DNSFormatError, dns_error.DNSNotImplementedError, dns_error.DNSUnknownError):
        return DNSTemporaryFailure(f"{label}: DNS error ({type(reason.value).__name__})")
    if reason.check(OSError, ConnectError, ConnectionLost):
        return DNSTemporaryFailure(f"{label}: {reason.value}")
    reason.raiseException()
    raise AssertionError("unreachable")  # pragma: no cover


def make_resolver(dns_settings: DNSSettings, reactor: IReactorCore) -> TwistedNamesResolver:
    """
    The resolver the configuration asks for: C{dns.nameservers} when set,
    else the system resolvers from C{dns.resolv_conf_path} (re-read when it
    changes, as C{twisted.names} does).
    """
    timeouts = lookup_timeouts(dns_settings.timeout)
    if dns_settings.nameservers:
        resolver = client.Resolver(
            servers=parse_nameservers(dns_settings.nameservers), timeout=timeouts, reactor=reactor,
        )
    else:
        resolver = client.Resolver(resolv=dns_settings.resolv_conf_path, timeout=timeouts, reactor=reactor)
    return TwistedNamesResolver(resolver, timeouts)

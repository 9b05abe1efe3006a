# -*- test-case-name: tests.test_dns -*-
"""
Verified in-memory fakes shared by the tests.

Each fake implements one of our interfaces and is checked against the real
implementation by the same contract tests (C{tests/test_dns.py} runs one
suite against L{FakeResolver} and against L{postal.dns.TwistedNamesResolver}
talking to a local DNS server that serves the same L{Zone}).
"""

from __future__ import annotations

from typing import Callable, TypeVar

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from postal.dns import (
    AddressRecord, CNAMERecord, DNSRecord, DNSTemporaryFailure, IResolver, MXRecord,
    NonexistentDomain, TXTRecord, normalise_name,
)

__all__ = ["Zone", "FakeResolver", "RECORD_TYPES"]

_R = TypeVar("_R", bound=DNSRecord)

#: What each query type matches in a zone.
RECORD_TYPES: dict[str, Callable[[DNSRecord], bool]] = {
    "MX": lambda r: isinstance(r, MXRecord),
    "TXT": lambda r: isinstance(r, TXTRecord),
    "A": lambda r: isinstance(r, AddressRecord) and r.version == 4,
    "AAAA": lambda r: isinstance(r, AddressRecord) and r.version == 6,
    "CNAME": lambda r: isinstance(r, CNAMERecord),
}

_MAX_CNAME_CHAIN = 8


@attrs.define
class Zone:
    """
    Records by name, answered the way an authoritative server answers:
    an unknown name is NXDOMAIN, a known name without the type is an empty
    answer, and a CNAME is followed for every other type.  Names in
    C{failing} answer SERVFAIL.
    """

    _records: dict[str, list[DNSRecord]] = attrs.field(factory=dict)
    _failing: set[str] = attrs.field(factory=set)

    def add(self, name: str, *records: DNSRecord) -> None:
        """Add records at C{name} (with none, the name exists but is empty)."""
        self._records.setdefault(normalise_name(name), []).extend(records)

    def replace(self, name: str, *records: DNSRecord) -> None:
        """Make C{records} the only records at C{name}."""
        self._records[normalise_name(name)] = list(records)

    def remove(self, name: str) -> None:
        """Forget C{name}: lookups of it become NXDOMAIN."""
        self._records.pop(normalise_name(name), None)

    def fail(self, name: str) -> None:
        """Lookups of C{name} answer SERVFAIL from now on."""
        self._failing.add(normalise_name(name))

    def answer(self, name: str, query_type: str) -> tuple[DNSRecord, ...]:
        """
        The records a lookup of C{query_type} at C{name} returns.

        @raise NonexistentDomain: C{name} (or the end of its CNAME chain) is unknown.
        @raise DNSTemporaryFailure: C{name} is one of the failing names.
        """
        matches = RECORD_TYPES[query_type]
        current = normalise_name(name)
        for _ in range(_MAX_CNAME_CHAIN):
            if current in self._failing:
                raise DNSTemporaryFailure(f"{query_type} {current}: DNS server failure (SERVFAIL)")
            if current not in self._records:
                raise NonexistentDomain(f"{query_type} {current}: no such domain (NXDOMAIN)")
            records = self._records[current]
            found = tuple(r for r in records if matches(r))
            aliases = [r for r in records if isinstance(r, CNAMERecord)]
            if found or query_type == "CNAME" or not aliases:
                return found
            current = aliases[0].target
        return ()

    def cname_chain(self, name: str, query_type: str) -> list[tuple[str, DNSRecord]]:
        """
        The (owner, record) pairs a server puts in its answer section: the
        CNAMEs followed, then the records found.
        """
        chain: list[tuple[str, DNSRecord]] = []
        current = normalise_name(name)
        for _ in range(_MAX_CNAME_CHAIN):
            records = self._records.get(current, [])
            found = [r for r in records if RECORD_TYPES[query_type](r)]
            aliases = [r for r in records if isinstance(r, CNAMERecord)]
            if found or query_type == "CNAME" or not aliases:
                return chain + [(current, r) for r in found]
            chain.append((current, aliases[0]))
            current = aliases[0].target
        return chain


@implementer(IResolver)
@attrs.define
class FakeResolver:
    """
    L{IResolver} answering at once from a L{Zone}; C{queries} records
    every lookup as C{(type, name)} for tests that assert on them.
    """

    zone: Zone = attrs.field(factory=Zone)
    queries: list[tuple[str, str]] = attrs.field(factory=list)

    def lookup_mx(self, name: str) -> Deferred[tuple[MXRecord, ...]]:
        d = self._lookup(name, "MX", MXRecord)
        return d.addCallback(lambda records: tuple(sorted(records, key=lambda r: r.priority)))

    def lookup_txt(self, name: str) -> Deferred[tuple[TXTRecord, ...]]:
        return self._lookup(name, "TXT", TXTRecord)

    def lookup_a(self, name: str) -> Deferred[tuple[AddressRecord, ...]]:
        return self._lookup(name, "A", AddressRecord)

    def lookup_aaaa(self, name: str) -> Deferred[tuple[AddressRecord, ...]]:
        return self._lookup(name, "AAAA", AddressRecord)

    def lookup_cname(self, name: str) -> Deferred[tuple[CNAMERecord, ...]]:
        return self._lookup(name, "CNAME", CNAMERecord)

    def _lookup(self, name: str, query_type: str, kind: type[_R]) -> Deferred[tuple[_R, ...]]:
        self.queries.append((query_type, normalise_name(name)))
        try:
            records = self.zone.answer(name, query_type)
        except (NonexistentDomain, DNSTemporaryFailure) as e:
            return fail(e)
        return succeed(tuple(_as_resolved(r) for r in records if isinstance(r, kind)))


def _as_resolved(record: _R) -> _R:
    """Host names as a resolver returns them: lower case, no root dot."""
    if isinstance(record, MXRecord):
        return MXRecord(record.priority, normalise_name(record.host))  # type: ignore[return-value]
    if isinstance(record, CNAMERecord):
        return CNAMERecord(normalise_name(record.target))  # type: ignore[return-value]
    return record

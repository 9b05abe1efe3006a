# -*- test-case-name: tests.cron.test_dns_checks -*-
"""
Postal's C{CheckAllDNSScheduledTask}: every hour, domains whose records
were last checked over an hour ago are checked again; when a server-owned
domain's records are not OK, DomainDNSError is queued in the transaction
that records the result.  Track domains never checked or checked over an
hour ago are checked too (L{postal.cron.track_domains}).
"""

from __future__ import annotations

from typing import Awaitable, Callable, ClassVar

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from postal.cron.schedules import HourlyAt
from postal.cron.task import DatabaseTask, ICronTask, TaskIncomplete
from postal.cron.track_domains import TrackDomainChecker, check_track_domains
from postal.db.domains import DNSCheckResult, Domain, domains_with_dns_checks_txn
from postal.db.notices import record_scheduled_dns_check_txn
from postal.dns import AddressRecord, CNAMERecord, IResolver, MXRecord, TXTRecord

__all__ = ["CheckAllDNS", "DomainChecker", "RECHECK_AFTER", "LazyResolver"]

log = Logger()

#: Checks the records of one domain (L{postal.domain_checks}).
DomainChecker = Callable[[Domain], Awaitable[DNSCheckResult]]

#: A domain is checked again this long after its last check.
RECHECK_AFTER = 3600.0


@implementer(IResolver)
@attrs.define
class LazyResolver:
    """
    An L{IResolver} made by C{factory} on first lookup: a C{twisted.names}
    resolver starts timers on the reactor as soon as it exists, which a
    service tree that is only built (not started) must not do.
    """

    _factory: Callable[[], IResolver]
    _made: IResolver | None = attrs.field(default=None, init=False)

    def _resolver(self) -> IResolver:
        if self._made is None:
            self._made = self._factory()
        return self._made

    def lookup_mx(self, name: str) -> Deferred[tuple[MXRecord, ...]]:
        return self._resolver().lookup_mx(name)

    def lookup_txt(self, name: str) -> Deferred[tuple[TXTRecord, ...]]:
        return self._resolver().lookup_txt(name)

    def lookup_a(self, name: str) -> Deferred[tuple[AddressRecord, ...]]:
        return self._resolver().lookup_a(name)

    def lookup_aaaa(self, name: str) -> Deferred[tuple[AddressRecord, ...]]:
        return self._resolver().lookup_aaaa(name)

    def lookup_cname(self, name: str) -> Deferred[tuple[CNAMERecord, ...]]:
        return self._resolver().lookup_cname(name)


@implementer(ICronTask)
@attrs.define
class CheckAllDNS(DatabaseTask):
    name: ClassVar[str] = "check_all_dns"
    schedule: ClassVar[HourlyAt] = HourlyAt(15)

    _check_domain: DomainChecker = attrs.field(kw_only=True)
    _check_track_domain: TrackDomainChecker | None = attrs.field(kw_only=True, default=None)

    async def _run(self) -> str:
        checked_before = self._now() - RECHECK_AFTER
        domains = await self._pool.run_in_transaction(
            "cron_domains_to_check", domains_with_dns_checks_txn, checked_before)
        errors = failed = 0
        for domain in domains:
            try:
                errors += await self._check(domain)
            except Exception:
                failed += 1
                log.failure("Could not check the DNS records of {domain}", domain=domain.name)
        summary = f"checked {len(domains) - failed} domains, {errors} with DNS errors"
        if self._check_track_domain is not None:
            tracked, track_failed = await check_track_domains(
                self._pool, self._check_track_domain, self._now, checked_before)
            failed += track_failed
            summary += f"; checked {tracked} track domains"
        if failed:
            raise TaskIncomplete(f"{summary}; {failed} checks failed")
        return summary

    async def _check(self, domain: Domain) -> int:
        result = await self._check_domain(domain)
        raised = await self._pool.run_in_transaction(
            "cron_record_dns_check", record_scheduled_dns_check_txn, domain.id, self._now(), result)
        if raised:
            log.info("DNS records of {domain} are not OK: DomainDNSError queued", domain=domain.name)
        return int(raised)

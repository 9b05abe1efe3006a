# -*- test-case-name: tests.cron.test_dns_checks -*-
"""
The track-domain half of the hourly DNS re-check: C{<name>.<domain>} must
be a CNAME to C{dns.track_domain} (postal-behaviour.md section 6.3).
Postal's statuses and texts; no webhook.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import attrs
from twisted.logger import Logger

from postal.db.pool import TransactionPool
from postal.db.track_domain_checks import record_track_domain_check_txn, track_domains_to_check_txn
from postal.dns import IResolver, NonexistentDomain

__all__ = ["TrackDomainCNAMEChecker", "TrackDomainChecker", "check_track_domains"]

log = Logger()

#: Checks one track domain's full name: C{(status, error)}.
TrackDomainChecker = Callable[[str], Awaitable[tuple[str, str | None]]]


@attrs.define
class TrackDomainCNAMEChecker:
    """Checks the CNAME of a track domain through C{resolver}."""

    _resolver: IResolver
    _track_domain: str

    async def __call__(self, full_name: str) -> tuple[str, str | None]:
        try:
            records = await self._resolver.lookup_cname(full_name)
        except NonexistentDomain:
            records = ()
        targets = [r.target for r in records]
        expected = self._track_domain.lower().rstrip(".")
        if not targets:
            return "Missing", f"There is no record at {full_name}"
        if len(targets) == 1 and targets[0] == expected:
            return "OK", None
        return "Invalid", (f"There is a CNAME record at {full_name} but it points to {targets[0]} "
                           f"which is incorrect. It should point to {expected}.")


async def check_track_domains(
    pool: TransactionPool, check: TrackDomainChecker, now: Callable[[], float], checked_before: float,
) -> tuple[int, int]:
    """
    Check every track domain due; a lookup failure skips that one.

    @return: C{(checked, failed)}.
    """
    due = await pool.run_in_transaction("cron_track_domains_to_check", track_domains_to_check_txn, checked_before)
    failed = 0
    for track in due:
        try:
            status, error = await check(track.full_name)
        except Exception:
            failed += 1
            log.failure("Could not check the DNS record of track domain {name}", name=track.full_name)
            continue
        await pool.run_in_transaction("cron_record_track_domain_check", record_track_domain_check_txn,
                                      track.id, now(), status, error)
    return len(due) - failed, failed

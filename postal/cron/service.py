# -*- test-case-name: tests.cron.test_tap -*-
"""
Putting the cron role together: every task, the scheduler that runs them
and the lease that lets only one process do so.
"""

from __future__ import annotations

from typing import Callable, Sequence

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime

from postal.cron.deletions import ActionDeletions
from postal.cron.dns_checks import CheckAllDNS, DomainChecker, LazyResolver
from postal.cron.holds import ExpireHeldMessages
from postal.cron.retention import ProcessMessageRetention
from postal.cron.scheduler import CronScheduler
from postal.cron.send_limits import SendNotifications
from postal.cron.suppressions import PruneSuppressionLists
from postal.cron.task import DEFAULT_BATCH_SIZE, ICronTask
from postal.cron.track_domains import TrackDomainChecker, TrackDomainCNAMEChecker
from postal.cron.webhook_history import PruneWebhookRequests
from postal.config import DNSSettings
from postal.db.pool import TransactionPool
from postal.dns import IResolver
from postal.domain_checks import DomainDNSChecker
from postal.lease import LeaseService

__all__ = ["all_tasks", "dns_checkers", "task_named", "cron_service", "CronService", "TASK_NAMES"]

#: Every task's name, as C{postal cron run} takes them.
TASK_NAMES = (
    ActionDeletions.name, CheckAllDNS.name, ExpireHeldMessages.name, ProcessMessageRetention.name,
    PruneSuppressionLists.name, PruneWebhookRequests.name, SendNotifications.name,
)


def all_tasks(
    pool: TransactionPool, clock: IReactorTime, check_domain: DomainChecker,
    batch_size: int = DEFAULT_BATCH_SIZE, check_track_domain: TrackDomainChecker | None = None,
) -> list[ICronTask]:
    """One of each task, working through C{pool} on C{clock}."""
    return [
        SendNotifications(pool, clock, batch_size),
        ExpireHeldMessages(pool, clock, batch_size),
        CheckAllDNS(pool, clock, batch_size, check_domain=check_domain, check_track_domain=check_track_domain),
        ActionDeletions(pool, clock, batch_size),
        PruneWebhookRequests(pool, clock, batch_size),
        PruneSuppressionLists(pool, clock, batch_size),
        ProcessMessageRetention(pool, clock, batch_size),
    ]


def dns_checkers(
    make_resolver: Callable[[], IResolver], settings: DNSSettings,
) -> tuple[DomainChecker, TrackDomainChecker]:
    """The domain and track-domain checkers, sharing one resolver made on first use."""
    resolver = LazyResolver(make_resolver)
    return DomainDNSChecker(resolver, settings).check, TrackDomainCNAMEChecker(resolver, settings.track_domain)


def task_named(tasks: Sequence[ICronTask], name: str) -> ICronTask:
    """The task called C{name}; L{KeyError} naming the known ones otherwise."""
    for task in tasks:
        if task.name == name:
            return task
    raise KeyError(f"no task {name!r} (one of {', '.join(sorted(t.name for t in tasks))})")


class CronService(MultiService):
    """
    The service named C{cron}: the C{cron} lease, whose holder runs the
    scheduler; on stop the lease waits for the task in progress before it
    lets go.
    """

    def __init__(self, scheduler: CronScheduler, lease: LeaseService) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.setName("cron")  # type: ignore[no-untyped-call]
        self.scheduler = scheduler
        self.lease = lease
        lease.setServiceParent(self)  # type: ignore[no-untyped-call]


def cron_service(
    tasks: Sequence[ICronTask], pool: TransactionPool, clock: IReactorTime,
    lease_seconds: float, holder: str,
) -> CronService:
    """Schedule C{tasks} in whichever process holds the C{cron} lease."""
    scheduler = CronScheduler(tasks, pool, clock)
    lease = LeaseService("cron", holder, pool, clock, lease_seconds,
                         on_acquired=scheduler.start_running, on_lost=scheduler.stop_running)
    return CronService(scheduler, lease)

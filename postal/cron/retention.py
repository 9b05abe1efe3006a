# -*- test-case-name: tests.cron.test_retention -*-
"""
Postal's C{ProcessMessageRetentionScheduledTask} (postal-behaviour.md
section 3.8), per server and in Postal's order: raw messages older than
C{raw_message_retention_days}, then the oldest raw messages until the
server keeps at most C{raw_message_retention_size} MB, then messages (with
their deliveries, clicks, loads, links, spam checks and queue rows) older
than C{message_retention_days}.  Days are whole UTC days, as Postal's
per-day raw tables made them.  Everything goes in bounded batches; on
SQLite the freed pages are then given back to the file system.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from postal.clock import utc_datetime
from postal.cron.schedules import DailyAt
from postal.cron.task import DatabaseTask, ICronTask, TaskIncomplete, repeat_batches
from postal.db.pool import TransactionPool
from postal.db.retention import (
    RetentionPolicy, expire_messages_txn, expire_raw_messages_txn, incremental_vacuum_txn,
    retention_policies_txn, trim_raw_storage_txn,
)

__all__ = ["ProcessMessageRetention", "retention_cutoffs", "return_free_pages", "VACUUM_PAGES"]

log = Logger()

_DAY = 86400.0
_MB = 1024 * 1024

#: Pages (4 KiB by default) SQLite gives back per transaction.
VACUUM_PAGES = 2048


async def return_free_pages(pool: TransactionPool) -> int:
    """
    Give the database's free pages back to the file system, a bounded
    number per transaction (SQLite; nothing to do on PostgreSQL).

    @return: the pages still free (0 unless something else was writing).
    """
    remaining = await pool.run_in_transaction("cron_incremental_vacuum", incremental_vacuum_txn, VACUUM_PAGES)
    while remaining:
        previous = remaining
        remaining = await pool.run_in_transaction("cron_incremental_vacuum", incremental_vacuum_txn, VACUUM_PAGES)
        if remaining >= previous:
            break
    return remaining


def _start_of_day(timestamp: float) -> float:
    return utc_datetime(timestamp).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def retention_cutoffs(policy: RetentionPolicy, now: float) -> tuple[float | None, float | None]:
    """
    C{(raw_before, messages_before)}: raw messages stored before the first
    is deleted, and messages received before the second; None keeps them.
    Raw messages from the last N days plus today stay; messages from the
    last N days (today included) stay.
    """
    today = _start_of_day(now)
    raw = policy.raw_message_retention_days
    messages = policy.message_retention_days
    return (
        None if raw is None else today - raw * _DAY,
        None if messages is None else today - (messages - 1) * _DAY,
    )


@implementer(ICronTask)
@attrs.define
class ProcessMessageRetention(DatabaseTask):
    name: ClassVar[str] = "process_message_retention"
    schedule: ClassVar[DailyAt] = DailyAt(3)

    async def _run(self) -> str:
        policies = await self._pool.run_in_transaction("cron_retention_policies", retention_policies_txn)
        raw = messages = failed = 0
        for policy in policies:
            try:
                server_raw, server_messages = await self._apply(policy)
            except Exception:
                failed += 1
                log.failure("Retention failed for server {server_id}", server_id=policy.server_id)
                continue
            raw += server_raw
            messages += server_messages
        free_pages = await return_free_pages(self._pool)
        summary = f"deleted {raw} raw messages and {messages} messages; {free_pages} free pages left"
        if failed:
            raise TaskIncomplete(f"{summary}; {failed} servers failed")
        return summary

    async def _apply(self, policy: RetentionPolicy) -> tuple[int, int]:
        raw_before, messages_before = retention_cutoffs(policy, self._now())
        raw = messages = 0
        if raw_before is not None:
            raw += await repeat_batches(self._pool, "cron_expire_raw_messages", self._batch_size,
                                        expire_raw_messages_txn, policy.server_id, raw_before)
        if policy.raw_message_retention_size is not None:
            raw += await repeat_batches(self._pool, "cron_trim_raw_storage", self._batch_size,
                                        trim_raw_storage_txn, policy.server_id,
                                        policy.raw_message_retention_size * _MB)
        if messages_before is not None:
            messages += await repeat_batches(self._pool, "cron_expire_messages", self._batch_size,
                                             expire_messages_txn, policy.server_id, messages_before)
        if raw or messages:
            log.info("Retention for server {server_id}: {raw} raw messages, {messages} messages deleted",
                     server_id=policy.server_id, raw=raw, messages=messages)
        return raw, messages

# -*- test-case-name: tests.cron.test_tasks -*-
"""
Postal's C{ActionDeletionsScheduledTask}: soft-deleted servers (and the
servers of soft-deleted organizations) are purged with everything that
references them, messages first in bounded batches; then the deleted
organizations themselves.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from postal.cron.retention import return_free_pages
from postal.cron.schedules import HourlyAt
from postal.cron.task import DatabaseTask, ICronTask, TaskIncomplete, repeat_batches
from postal.db.purge import (
    organizations_to_purge_txn, purge_organization_rows_txn, purge_server_batch_txn,
    purge_server_rows_txn, servers_to_purge_txn,
)

__all__ = ["ActionDeletions"]

log = Logger()


@implementer(ICronTask)
@attrs.define
class ActionDeletions(DatabaseTask):
    name: ClassVar[str] = "action_deletions"
    schedule: ClassVar[HourlyAt] = HourlyAt(15)

    async def _run(self) -> str:
        servers = await self._pool.run_in_transaction("cron_servers_to_purge", servers_to_purge_txn)
        purged_servers = failed = 0
        for server_id in servers:
            try:
                await self._purge_server(server_id)
            except Exception:
                failed += 1
                log.failure("Could not purge deleted server {server_id}", server_id=server_id)
            else:
                purged_servers += 1
        organizations = await self._pool.run_in_transaction("cron_orgs_to_purge", organizations_to_purge_txn)
        purged_orgs = 0
        for org_id in organizations:
            if await self._pool.run_in_transaction("cron_purge_organization", purge_organization_rows_txn, org_id):
                purged_orgs += 1
                log.info("Purged deleted organization {organization_id}", organization_id=org_id)
        if purged_servers or purged_orgs:
            await return_free_pages(self._pool)
        summary = f"purged {purged_servers} servers and {purged_orgs} organizations"
        if failed:
            raise TaskIncomplete(f"{summary}; {failed} servers failed")
        return summary

    async def _purge_server(self, server_id: int) -> None:
        rows = await repeat_batches(self._pool, "cron_purge_server_messages", self._batch_size,
                                    purge_server_batch_txn, server_id)
        await self._pool.run_in_transaction("cron_purge_server", purge_server_rows_txn, server_id)
        log.info("Purged deleted server {server_id} ({rows} message rows)", server_id=server_id, rows=rows)

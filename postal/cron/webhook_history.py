# -*- test-case-name: tests.cron.test_tasks -*-
"""
Postal's C{PruneWebhookRequestsScheduledTask}: the history of webhook
attempts is kept for ten days.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from zope.interface import implementer

from postal.cron.schedules import HourlyAt
from postal.cron.task import DatabaseTask, ICronTask, repeat_batches
from postal.db.housekeeping import prune_webhook_attempts_txn

__all__ = ["PruneWebhookRequests", "WEBHOOK_HISTORY_DAYS"]

WEBHOOK_HISTORY_DAYS = 10


@implementer(ICronTask)
@attrs.define
class PruneWebhookRequests(DatabaseTask):
    name: ClassVar[str] = "prune_webhook_requests"
    schedule: ClassVar[HourlyAt] = HourlyAt(45)

    async def _run(self) -> str:
        before = self._now() - WEBHOOK_HISTORY_DAYS * 86400
        count = await repeat_batches(self._pool, "cron_prune_webhook_attempts", self._batch_size,
                                     prune_webhook_attempts_txn, before)
        return f"removed {count} webhook attempts older than {WEBHOOK_HISTORY_DAYS} days"

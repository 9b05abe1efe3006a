# -*- test-case-name: tests.cron.test_tasks -*-
"""
Postal's C{PruneSuppressionListsScheduledTask}: suppression entries whose
C{keep_until} has passed are deleted.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from zope.interface import implementer

from postal.cron.schedules import DailyAt
from postal.cron.task import DatabaseTask, ICronTask, repeat_batches
from postal.db.housekeeping import prune_expired_suppressions_txn

__all__ = ["PruneSuppressionLists"]


@implementer(ICronTask)
@attrs.define
class PruneSuppressionLists(DatabaseTask):
    name: ClassVar[str] = "prune_suppression_lists"
    schedule: ClassVar[DailyAt] = DailyAt(3)

    async def _run(self) -> str:
        count = await repeat_batches(self._pool, "cron_prune_suppressions", self._batch_size,
                                     prune_expired_suppressions_txn, self._now())
        return f"removed {count} expired suppression entries"

# -*- test-case-name: tests.cron.test_tasks -*-
"""
Postal's C{ExpireHeldMessagesScheduledTask}: messages held past their hold
expiry get a HoldCancelled delivery and leave the queue.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from zope.interface import implementer

from postal.cron.schedules import HourlyAt
from postal.cron.task import DatabaseTask, ICronTask, repeat_batches
from postal.db.housekeeping import expire_held_messages_txn

__all__ = ["ExpireHeldMessages"]


@implementer(ICronTask)
@attrs.define
class ExpireHeldMessages(DatabaseTask):
    name: ClassVar[str] = "expire_held_messages"
    schedule: ClassVar[HourlyAt] = HourlyAt(15)

    async def _run(self) -> str:
        count = await repeat_batches(self._pool, "cron_expire_held_messages", self._batch_size,
                                     expire_held_messages_txn, self._now())
        return f"cancelled {count} expired holds"

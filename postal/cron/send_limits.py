# -*- test-case-name: tests.cron.test_tasks -*-
"""
Postal's C{SendNotificationsScheduledTask}: every minute, tell servers'
all-events webhooks that they are approaching or over their send limit.

Postal also e-mails the organization's users; that needs the C{smtp}
mailer, which this project does not have yet.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from zope.interface import implementer

from postal.cron.schedules import EveryMinute
from postal.cron.task import DatabaseTask, ICronTask
from postal.db.notices import send_limit_notices_txn

__all__ = ["SendNotifications"]


@implementer(ICronTask)
@attrs.define
class SendNotifications(DatabaseTask):
    name: ClassVar[str] = "send_notifications"
    schedule: ClassVar[EveryMinute] = EveryMinute()

    async def _run(self) -> str:
        notices = await self._pool.run_in_transaction(
            "cron_send_limit_notices", send_limit_notices_txn, self._now())
        return f"sent {len(notices)} send-limit notices"

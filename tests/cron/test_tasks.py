# -*- test-case-name: tests.cron.test_tasks -*-
"""
Each cron task run once against SQLite and PostgreSQL: what it changes in
the database, in bounded batches.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from postal.cron.deletions import ActionDeletions
from postal.cron.holds import ExpireHeldMessages
from postal.cron.retention import ProcessMessageRetention
from postal.cron.send_limits import SendNotifications
from postal.cron.service import TASK_NAMES, all_tasks
from postal.cron.suppressions import PruneSuppressionLists
from postal.cron.task import ICronTask
from postal.cron.webhook_history import PruneWebhookRequests
from postal.db import schema as s
from postal.db.pool import SynchronousDatabasePool
from tests.cron.fixtures import DAY, NOW, Installation, count
from tests.dbhelpers import both_databases


class _TasksMixin:
    make_engine: Any
    database: str
    assertEqual: Any
    assertTrue: Any
    successResultOf: Any

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.pool = SynchronousDatabasePool(self.make_engine())
        self.site = Installation(self.pool)

    def run_task(self, task: ICronTask) -> str:
        result: str = self.successResultOf(task.run())
        return result

    def test_every_task_provides_interface(self) -> None:
        """Every task is an L{ICronTask} with a schedule, under Postal's names."""
        tasks = all_tasks(self.pool, self.clock, lambda domain: None)  # type: ignore[arg-type,return-value]
        for task in tasks:
            self.assertTrue(verifyObject(ICronTask, task))
        self.assertEqual(sorted(t.name for t in tasks), sorted(TASK_NAMES))

    def test_expire_held_messages(self) -> None:
        """Every expired hold is cancelled, over several batches."""
        stored = self.site.store(NOW - 8 * DAY, [f"{i}@x.test" for i in range(5)])
        for message in stored:
            self.site.hold(message.id, NOW - 60)
        summary = self.run_task(ExpireHeldMessages(self.pool, self.clock, 2))
        self.assertEqual(summary, "cancelled 5 expired holds")
        self.assertEqual(count(self.pool, s.messages, s.messages.c.status == "HoldCancelled"), 5)
        self.assertEqual(count(self.pool, s.deliveries, s.deliveries.c.status == "HoldCancelled"), 5)
        self.assertEqual(count(self.pool, s.queued_messages), 0)

    def test_prune_suppression_lists(self) -> None:
        """Expired suppression entries are deleted, live ones kept."""
        for i in range(5):
            self.site.execute(insert(s.suppressions).values(
                server_id=self.site.server.id, type="recipient", address=f"{i}@x.test", timestamp=1.0,
                keep_until=NOW - 1 if i < 3 else NOW + DAY))
        self.assertEqual(self.run_task(PruneSuppressionLists(self.pool, self.clock, 2)),
                         "removed 3 expired suppression entries")
        self.assertEqual(count(self.pool, s.suppressions), 2)

    def test_prune_webhook_requests(self) -> None:
        """Webhook history older than ten days is deleted."""
        for age in (12, 11, 10.01, 9.99, 1):
            self.site.execute(insert(s.webhook_attempts).values(
                server_id=self.site.server.id, uuid="u", event="MessageSent", url="https://x.test/",
                attempt=1, timestamp=NOW - age * DAY, will_retry=False))
        self.run_task(PruneWebhookRequests(self.pool, self.clock, 2))
        with self.pool.engine.connect() as conn:
            left = sorted(conn.execute(select(s.webhook_attempts.c.timestamp)).scalars())
        self.assertEqual(left, [NOW - 9.99 * DAY, NOW - DAY])

    def test_send_notifications(self) -> None:
        """A server over its limit fires SendLimitExceeded to all-events webhooks, once."""
        self.site.add_webhook(all_events=True)
        self.site.execute(update(s.servers).values(send_limit=10, send_limit_approaching_at=NOW - 30))
        self.assertEqual(self.run_task(SendNotifications(self.pool, self.clock)), "sent 1 send-limit notices")
        [request] = self.site.webhook_requests()
        payload = json.loads(request.payload)
        self.assertEqual((request.event, payload["volume"], payload["limit"]), ("SendLimitApproaching", 0, 10))
        self.assertEqual(payload["server"], {"uuid": self.site.server.uuid, "name": "Main",
                                             "permalink": "main", "organization": "acme"})
        self.clock.advance(60)
        self.run_task(SendNotifications(self.pool, self.clock))
        self.assertEqual(len(self.site.webhook_requests()), 1)

    def test_retention_removes_rows_and_raw_data(self) -> None:
        """
        Raw messages past their retention lose their data, the oldest go
        past the size limit, and old messages go with all their rows.
        """
        self.site.execute(update(s.servers).values(
            raw_message_retention_days=30, raw_message_retention_size=1, message_retention_days=60))
        ancient = self.site.store(NOW - 61 * DAY, ["a@x.test", "b@x.test"], size=1000)
        old_raw = self.site.store(NOW - 31 * DAY, ["c@x.test"], size=1000)
        big = self.site.store(NOW - 2 * DAY, ["d@x.test"], size=700 * 1024)
        recent = self.site.store(NOW - DAY, ["e@x.test"], size=700 * 1024)
        for message in ancient + old_raw + recent:
            self.site.add_activity(message.id, NOW)
        summary = self.run_task(ProcessMessageRetention(self.pool, self.clock, 1))
        self.assertTrue(summary.startswith("deleted 3 raw messages and 2 messages"), summary)
        with self.pool.engine.connect() as conn:
            rows = dict(conn.execute(select(s.messages.c.id, s.messages.c.raw_message_id)).all())
        self.assertEqual(sorted(rows), [old_raw[0].id, big[0].id, recent[0].id])
        self.assertEqual([rows[old_raw[0].id], rows[big[0].id]], [None, None])
        self.assertTrue(rows[recent[0].id])
        self.assertEqual(count(self.pool, s.raw_messages), 1)
        for table in (s.deliveries, s.links, s.clicks, s.loads, s.spam_checks):
            self.assertEqual(count(self.pool, table), 2, table.name)

    def test_retention_none_keeps_everything(self) -> None:
        """A server whose retention settings are null keeps everything."""
        self.site.execute(update(s.servers).values(
            raw_message_retention_days=None, raw_message_retention_size=None, message_retention_days=None))
        self.site.store(NOW - 400 * DAY, ["a@x.test"])
        self.run_task(ProcessMessageRetention(self.pool, self.clock))
        self.assertEqual((count(self.pool, s.messages), count(self.pool, s.raw_messages)), (1, 1))

    def test_action_deletions(self) -> None:
        """A deleted server and a deleted organization are purged; live ones stay."""
        doomed = self.site.add_server("Doomed")
        for server in (self.site.server, doomed):
            for message in self.site.store(NOW, ["a@x.test", "b@x.test", "c@x.test"], server_id=server.id):
                self.site.add_activity(message.id, NOW)
        self.site.execute(update(s.servers).where(s.servers.c.id == doomed.id).values(deleted_at=NOW))
        other = Installation(self.pool, "gone")
        other.store(NOW, ["x@y.test"])
        other.execute(update(s.organizations).where(s.organizations.c.id == other.org.id).values(deleted_at=NOW))
        summary = self.run_task(ActionDeletions(self.pool, self.clock, 2))
        self.assertEqual(summary, "purged 2 servers and 1 organizations")
        with self.pool.engine.connect() as conn:
            self.assertEqual(list(conn.execute(select(s.servers.c.id)).scalars()), [self.site.server.id])
            self.assertEqual(list(conn.execute(select(s.organizations.c.id)).scalars()), [self.site.org.id])
            self.assertEqual(set(conn.execute(select(s.messages.c.server_id)).scalars()), {self.site.server.id})
        self.assertEqual(count(self.pool, s.raw_messages), 1)
        self.assertEqual(count(self.pool, s.deliveries), 3)


globals().update(both_databases(_TasksMixin))

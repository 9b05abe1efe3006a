# -*- test-case-name: tests.db.test_cron_store -*-
"""
The cron role's store functions on SQLite and PostgreSQL: scheduled task
rows, bounded batches of retention, holds, pruning, purging and notices.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, select, update

from postal.db import schema as s
from postal.db.housekeeping import (
    HOLD_CANCELLED_DETAILS, expire_held_messages_txn, prune_expired_suppressions_txn,
    prune_webhook_attempts_txn,
)
from postal.db.notices import send_limit_notices_txn
from postal.db.pool import SynchronousDatabasePool
from postal.db.purge import (
    purge_organization_rows_txn, purge_server_batch_txn, purge_server_rows_txn, servers_to_purge_txn,
)
from postal.db.retention import (
    expire_messages_txn, expire_raw_messages_txn, raw_storage_bytes_txn, trim_raw_storage_txn,
)
from postal.db.scheduled_tasks import ensure_scheduled_tasks_txn, record_task_run_txn, scheduled_tasks_txn
from tests.cron.fixtures import DAY, NOW, Installation, count
from tests.dbhelpers import both_databases


class _CronStoreMixin:
    make_engine: Any
    assertEqual: Any
    assertIsNone: Any
    assertTrue: Any
    assertFalse: Any

    def setUp(self) -> None:
        self.pool = SynchronousDatabasePool(self.make_engine())
        self.site = Installation(self.pool)

    def test_scheduled_task_rows_kept(self) -> None:
        """A task's row is made once; ensuring it again never moves its next run."""
        self.pool.call("e", ensure_scheduled_tasks_txn, [("a", 100.0), ("b", 200.0)])
        rows = self.pool.call("e", ensure_scheduled_tasks_txn, [("a", 999.0), ("b", 999.0), ("c", 300.0)])
        self.assertEqual([(r.name, r.next_run_after) for r in rows], [("a", 100.0), ("b", 200.0), ("c", 300.0)])

    def test_task_run_recorded(self) -> None:
        """A run's status, error and next run are stored; a manual run keeps the next run."""
        self.pool.call("e", ensure_scheduled_tasks_txn, [("a", 100.0)])
        self.pool.call("r", record_task_run_txn, "a", 150.0, "error", "boom", 3700.0)
        self.pool.call("r", record_task_run_txn, "a", 160.0, "ok", None, None)
        [row] = self.pool.call("l", scheduled_tasks_txn)
        self.assertEqual((row.last_run_at, row.last_status, row.last_error, row.next_run_after),
                         (160.0, "ok", None, 3700.0))

    def test_expired_holds_cancelled(self) -> None:
        """Held messages past expiry get HoldCancelled and leave the queue; others stay held."""
        expired, live, forever = self.site.store(NOW, ["a@x.test", "b@x.test", "c@x.test"])
        self.site.hold(expired.id, NOW - 1)
        self.site.hold(live.id, NOW + 1)
        self.site.hold(forever.id, None)
        self.assertEqual(self.pool.call("h", expire_held_messages_txn, NOW, 500), 1)
        with self.pool.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(select(s.messages))}
            delivery = conn.execute(select(s.deliveries)).one()
        self.assertEqual((rows[expired.id].status, rows[expired.id].held), ("HoldCancelled", False))
        self.assertEqual((rows[live.id].status, rows[live.id].held), ("Held", True))
        self.assertEqual((delivery.message_id, delivery.status, delivery.details),
                         (expired.id, "HoldCancelled", HOLD_CANCELLED_DETAILS))
        self.assertEqual(count(self.pool, s.queued_messages, s.queued_messages.c.message_id == expired.id), 0)
        self.assertEqual(count(self.pool, s.queued_messages), 2)

    def test_hold_expiry_bounded(self) -> None:
        """One batch handles at most its limit of expired holds."""
        for message in self.site.store(NOW, [f"{i}@x.test" for i in range(5)]):
            self.site.hold(message.id, NOW - 10)
        self.assertEqual(self.pool.call("h", expire_held_messages_txn, NOW, 2), 2)
        self.assertEqual(count(self.pool, s.messages, s.messages.c.held.is_(True)), 3)

    def test_suppressions_pruned(self) -> None:
        """Entries kept until before now are deleted; live ones stay."""
        for address, keep_until in (("old@x.test", NOW - 1), ("new@x.test", NOW + 1)):
            self.site.execute(insert(s.suppressions).values(
                server_id=self.site.server.id, type="recipient", address=address, timestamp=1.0,
                keep_until=keep_until))
        self.assertEqual(self.pool.call("p", prune_expired_suppressions_txn, NOW, 500), 1)
        with self.pool.engine.connect() as conn:
            self.assertEqual(list(conn.execute(select(s.suppressions.c.address)).scalars()), ["new@x.test"])

    def test_webhook_attempts_pruned(self) -> None:
        """Webhook history from before the cut-off is deleted in bounded batches."""
        for when in (NOW - 11 * DAY, NOW - 10.5 * DAY, NOW - 11 * DAY, NOW - 9 * DAY):
            self.site.execute(insert(s.webhook_attempts).values(
                server_id=self.site.server.id, uuid="u", event="MessageSent", url="https://x.test/",
                attempt=1, timestamp=when, will_retry=False))
        self.assertEqual(self.pool.call("p", prune_webhook_attempts_txn, NOW - 10 * DAY, 2), 2)
        self.assertEqual(self.pool.call("p", prune_webhook_attempts_txn, NOW - 10 * DAY, 2), 1)
        self.assertEqual(count(self.pool, s.webhook_attempts), 1)

    def test_old_raw_messages_removed(self) -> None:
        """Raw messages before the cut-off go; their messages stay with no raw message."""
        [old] = self.site.store(NOW - 40 * DAY, ["a@x.test"])
        [new] = self.site.store(NOW, ["b@x.test"])
        self.assertEqual(self.pool.call("r", expire_raw_messages_txn, self.site.server.id, NOW - 30 * DAY, 500), 1)
        with self.pool.engine.connect() as conn:
            raw_ids = dict(conn.execute(select(s.messages.c.id, s.messages.c.raw_message_id)).all())
        self.assertIsNone(raw_ids[old.id])
        self.assertTrue(raw_ids[new.id])
        self.assertEqual(count(self.pool, s.raw_messages), 1)
        self.assertEqual(count(self.pool, s.messages), 2)

    def test_raw_storage_trimmed_oldest_first(self) -> None:
        """Over the size limit, the oldest raw messages go until the rest fits."""
        for day in range(5):
            self.site.store(NOW - (5 - day) * DAY, [f"{day}@x.test"], size=1000)
        self.assertEqual(self.pool.call("t", trim_raw_storage_txn, self.site.server.id, 2500, 500), 3)
        self.assertEqual(self.pool.call("b", raw_storage_bytes_txn, self.site.server.id), 2000)
        with self.pool.engine.connect() as conn:
            kept = sorted(conn.execute(select(s.raw_messages.c.created_at)).scalars())
        self.assertEqual(kept, [NOW - 2 * DAY, NOW - DAY])
        self.assertEqual(self.pool.call("t", trim_raw_storage_txn, self.site.server.id, 2500, 500), 0)

    def test_old_messages_removed_with_their_rows(self) -> None:
        """Old messages go with deliveries, links, clicks, loads, spam checks, queue and raw rows."""
        old = self.site.store(NOW - 70 * DAY, ["a@x.test", "b@x.test"])
        [new] = self.site.store(NOW, ["c@x.test"])
        for message in old + [new]:
            self.site.add_activity(message.id, NOW)
        other = self.site.add_server("Other")
        self.site.store(NOW - 70 * DAY, ["d@x.test"], server_id=other.id)
        self.assertEqual(self.pool.call("m", expire_messages_txn, self.site.server.id, NOW - 60 * DAY, 500), 2)
        for table in (s.deliveries, s.links, s.clicks, s.loads, s.spam_checks):
            self.assertEqual(count(self.pool, table), 1, table.name)
        self.assertEqual(count(self.pool, s.messages), 2)
        self.assertEqual(count(self.pool, s.raw_messages), 2)
        self.assertEqual(count(self.pool, s.queued_messages), 2)

    def test_shared_raw_message_kept_while_used(self) -> None:
        """A raw message shared with a message that stays is not deleted with the others."""
        first, second = self.site.store(NOW - 70 * DAY, ["a@x.test", "b@x.test"])
        self.site.execute(update(s.messages).where(s.messages.c.id == second.id).values(timestamp=NOW))
        self.pool.call("m", expire_messages_txn, self.site.server.id, NOW - 60 * DAY, 500)
        self.assertEqual(count(self.pool, s.raw_messages), 1)
        self.assertEqual(count(self.pool, s.messages), 1)

    def test_send_limit_notices(self) -> None:
        """A server that recently hit its limit is told once an hour, with its volume and limit."""
        self.site.add_webhook(all_events=True)
        self.site.add_webhook(all_events=False, events=("MessageSent",))
        self.site.execute(update(s.servers).where(s.servers.c.id == self.site.server.id).values(
            send_limit=100, send_limit_exceeded_at=NOW - 60))
        self.site.execute(insert(s.live_stats).values(
            server_id=self.site.server.id, type="outgoing", minute=29, count=104, timestamp=NOW - 60))
        [notice] = self.pool.call("n", send_limit_notices_txn, NOW)
        self.assertEqual((notice.kind, notice.volume, notice.limit), ("exceeded", 104, 100))
        [request] = self.site.webhook_requests()
        self.assertEqual(request.event, "SendLimitExceeded")
        self.assertEqual(self.pool.call("n", send_limit_notices_txn, NOW + 60), [])

    def test_purge_covers_every_server_table(self) -> None:
        """After a purge no row of any table with a server_id refers to the deleted server."""
        victim = self.site.server
        keeper = self.site.add_server("Keeper")
        for server in (victim, keeper):
            self._populate(server.id)
        self.site.execute(update(s.servers).where(s.servers.c.id == victim.id).values(deleted_at=NOW))
        self.assertEqual(self.pool.call("l", servers_to_purge_txn), [victim.id])
        while self.pool.call("b", purge_server_batch_txn, victim.id, 2) == 2:
            pass
        self.pool.call("p", purge_server_rows_txn, victim.id)
        for table in s.metadata.sorted_tables:
            if "server_id" in table.c:
                self.assertEqual(count(self.pool, table, table.c.server_id == victim.id), 0, table.name)
                self.assertTrue(count(self.pool, table, table.c.server_id == keeper.id) > 0, table.name)
        self.assertEqual(count(self.pool, s.servers), 1)

    def test_purge_organization(self) -> None:
        """A deleted organization goes once its servers are purged, with its users and domains."""
        user = self.site.execute(insert(s.users).values(
            uuid="u1", first_name="A", last_name="B", email_address="a@b.test", time_zone="UTC",
            admin=False, created_at=1.0, updated_at=1.0))
        self.site.execute(insert(s.organization_users).values(
            organization_id=self.site.org.id, user_id=user, admin=True, all_servers=True, created_at=1.0))
        self.site.add_domain("org.test", organization_owned=True)
        self.site.execute(update(s.organizations).values(deleted_at=NOW))
        self.assertFalse(self.pool.call("o", purge_organization_rows_txn, self.site.org.id))
        self.assertEqual(self.pool.call("l", servers_to_purge_txn), [self.site.server.id])
        self.pool.call("p", purge_server_rows_txn, self.site.server.id)
        self.assertTrue(self.pool.call("o", purge_organization_rows_txn, self.site.org.id))
        for table in (s.organizations, s.organization_users, s.domains, s.servers):
            self.assertEqual(count(self.pool, table), 0, table.name)
        self.assertEqual(count(self.pool, s.users), 1)

    def _populate(self, server_id: int) -> None:
        """At least one row in every table that has a server_id."""
        messages = self.site.store(NOW, ["a@x.test", "b@x.test", "c@x.test"], server_id=server_id)
        for message in messages:
            self.site.add_activity(message.id, NOW)
        domain = self.site.add_domain(f"d{server_id}.test", server_id=server_id)
        webhook = self.site.add_webhook(all_events=False, events=("MessageSent",), server_id=server_id)
        route = self.site.execute(insert(s.routes).values(
            uuid=f"r{server_id}", server_id=server_id, domain_id=domain, name="in", token=f"tok{server_id}",
            mode="Endpoint", spam_mode="Mark", created_at=1.0))
        pool_id = self.site.execute(insert(s.ip_pools).values(
            uuid=f"p{server_id}", name="p", default=False, created_at=1.0))
        rows: list[tuple[Table, dict[str, Any]]] = [
            (s.additional_route_endpoints, dict(route_id=route, endpoint_type="X", endpoint_id=1, created_at=1.0)),
            (s.track_domains, dict(uuid=f"t{server_id}", server_id=server_id, domain_id=domain, name="click",
                                   ssl_enabled=True, track_clicks=True, track_loads=True, created_at=1.0)),
            (s.credentials, dict(uuid=f"c{server_id}", server_id=server_id, type="API", key=f"k{server_id}",
                                 hold=False, created_at=1.0)),
            (s.http_endpoints, dict(uuid=f"h{server_id}", server_id=server_id, name="h", url="https://x.test",
                                    encoding="BodyAsJSON", format="Hash", strip_replies=False,
                                    include_attachments=True, timeout=5, created_at=1.0)),
            (s.smtp_endpoints, dict(uuid=f"s{server_id}", server_id=server_id, name="s", hostname="x.test",
                                    port=25, ssl_mode="Auto", created_at=1.0)),
            (s.address_endpoints, dict(uuid=f"a{server_id}", server_id=server_id, address="a@x.test",
                                       created_at=1.0)),
            (s.ip_pool_rules, dict(uuid=f"i{server_id}", organization_id=self.site.org.id, server_id=server_id,
                                   ip_pool_id=pool_id, created_at=1.0)),
            (s.webhook_requests, dict(uuid=f"w{server_id}", server_id=server_id, webhook_id=webhook.id,
                                      url="https://x.test", event="MessageSent", payload="{}", attempts=0,
                                      created_at=1.0)),
            (s.webhook_attempts, dict(server_id=server_id, uuid="u", webhook_id=webhook.id, event="MessageSent",
                                      url="https://x.test", attempt=1, timestamp=1.0, will_retry=False)),
            (s.suppressions, dict(server_id=server_id, type="recipient", address="a@x.test", timestamp=1.0,
                                  keep_until=NOW + DAY)),
            (s.live_stats, dict(server_id=server_id, type="outgoing", minute=1, count=1, timestamp=NOW)),
        ]
        for table, values in rows:
            self.site.execute(insert(table).values(**values))


globals().update(both_databases(_CronStoreMixin))

# -*- test-case-name: tests.db.test_messages -*-
"""
Storing received transactions: one raw message shared by one message and
one queue row per recipient, with statistics, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from postal.db import messages, organizations, schema as s, servers
from postal.db.pool import SynchronousDatabasePool
from postal.db.stats import period_starts, totals_txn
from tests.dbhelpers import both_databases

# 2026-12-03 21:30:15 UTC
NOW = 1796333415.0


class _MessagesMixin:
    make_engine: Any
    assertEqual: Any
    assertIsNone: Any

    def setUp(self) -> None:
        self.pool = SynchronousDatabasePool(self.make_engine())
        self.pool.call("org", organizations.create_organization_txn, 1.0, "Acme", None, None)
        self.server = self.pool.call("server", servers.create_server_txn, 1.0, "acme", "Main", None)

    def _store(self, rcpts: list[str], scope: str = "outgoing") -> list[messages.StoredMessage]:
        transaction = messages.NewTransaction(self.server.id, b"Subject: Hi\r\n\r\nBody\r\n", [
            messages.NewMessage(scope, rcpt, "from@example.com", self.server.id, subject="Hi")
            for rcpt in rcpts
        ])
        return self.pool.call("store", messages.store_transaction_txn, NOW, transaction)

    def _count(self, table: Any) -> int:
        with self.pool.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def test_one_raw_message_shared(self) -> None:
        """Three recipients make three messages and queue rows sharing one raw message."""
        stored = self._store(["a@x.test", "b@y.test", "c@x.test"])
        self.assertEqual(len({m.token for m in stored}), 3)
        self.assertEqual(self._count(s.raw_messages), 1)
        self.assertEqual(self._count(s.messages), 3)
        self.assertEqual(self._count(s.queued_messages), 3)
        with self.pool.engine.connect() as conn:
            keys = sorted(r[0] for r in conn.execute(select(s.queued_messages.c.batch_key)))
        self.assertEqual(keys, ["outgoing-x.test", "outgoing-x.test", "outgoing-y.test"])

    def test_message_read_back(self) -> None:
        """A stored message reads back Pending with its raw message and no deliveries."""
        stored = self._store(["a@x.test"])[0]
        message = self.pool.call("get", messages.get_message_txn, self.server.id, stored.id)
        assert message is not None
        self.assertEqual((message.status, message.scope, message.rcpt_to, message.subject),
                         ("Pending", "outgoing", "a@x.test", "Hi"))
        self.assertEqual(message.timestamp, NOW)
        assert message.raw_message_id is not None
        self.assertEqual(self.pool.call("raw", messages.raw_message_txn, message.raw_message_id),
                         b"Subject: Hi\r\n\r\nBody\r\n")
        self.assertEqual(self.pool.call("d", messages.deliveries_for_message_txn, stored.id), [])
        self.assertIsNone(self.pool.call("get", messages.get_message_txn, self.server.id + 1, stored.id))

    def test_statistics_counted(self) -> None:
        """Each stored message counts once in every period row and the global totals."""
        self._store(["a@x.test", "b@x.test"])
        self._store(["c@x.test"], scope="incoming")
        self.assertEqual(self.pool.call("t", totals_txn),
                         {"total_messages": 3, "total_outgoing": 2, "total_incoming": 1})
        with self.pool.engine.connect() as conn:
            for table, start in period_starts(NOW).items():
                row = conn.execute(select(table)).one()
                self.assertEqual((row.time, row.outgoing, row.incoming), (start, 2, 1))

    def test_period_starts_are_utc(self) -> None:
        """Hourly, daily, monthly and yearly rows start at UTC period boundaries."""
        starts = {t.name: v for t, v in period_starts(NOW).items()}
        self.assertEqual(starts, {
            "stats_hourly": 1796331600.0, "stats_daily": 1796256000.0,
            "stats_monthly": 1796083200.0, "stats_yearly": 1767225600.0,
        })


globals().update(both_databases(_MessagesMixin))

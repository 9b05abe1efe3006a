# -*- test-case-name: tests.db.test_queue -*-
"""
Tests for L{postal.db.queue}: claims with a lease batched by destination,
release, lease renewal, the requeuer's returns and operator operations, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from typing import Any

from postal.db.pool import SynchronousDatabasePool
from postal.db.queue import (
    QueueFilter, claim_batch_txn, list_queue_txn, next_retry_at_txn, queue_stats_txn, release_txn,
    remove_queued_txn, renew_leases_txn, requeue_txn, retry_queued_txn,
)
from tests.dbhelpers import both_databases
from tests.delivery.helpers import make_account, queue_messages

NOW = 1_700_000_000.0


class _QueueMixin:
    make_engine: Any
    assertEqual: Any
    assertTrue: Any
    assertFalse: Any
    assertIsNone: Any
    database: str

    def setUp(self) -> None:
        self.pool = SynchronousDatabasePool(self.make_engine())
        self.account = make_account(self.pool)

    def claim(self, holder: str = "w1", limit: int = 100, now: float = NOW, skip: tuple[str, ...] = ()) -> list[Any]:
        return self.pool.call("claim", claim_batch_txn, now, holder, 60.0, limit, skip)

    def test_claim_batches_one_destination(self) -> None:
        """A claim takes the oldest ready row and more rows with the same batch key, never another destination's."""
        queue_messages(self.pool, self.account, ["a@one.test", "b@two.test", "c@one.test"])
        claimed = self.claim()
        self.assertEqual([c.batch_key for c in claimed], ["outgoing-one.test", "outgoing-one.test"])
        self.assertEqual({c.locked_by for c in claimed}, {"w1"})
        self.assertEqual({c.locked_until for c in claimed}, {NOW + 60.0})
        second = self.claim("w2")
        self.assertEqual([c.batch_key for c in second], ["outgoing-two.test"])
        self.assertEqual(self.claim("w3"), [])

    def test_claim_respects_limit_and_skipped_destinations(self) -> None:
        """The batch size is bounded and saturated destinations are skipped."""
        queue_messages(self.pool, self.account, ["a@one.test", "b@one.test", "c@one.test", "d@two.test"])
        self.assertEqual(len(self.claim(limit=2)), 2)
        claimed = self.claim(skip=("outgoing-one.test",))
        self.assertEqual([c.domain for c in claimed], ["two.test"])

    def test_deferred_rows_wait_for_retry_after(self) -> None:
        """A row with retry_after in the future is not claimable until that time."""
        queue_messages(self.pool, self.account, ["a@one.test"])
        [row] = self.claim()
        from sqlalchemy import update
        from postal.db import schema as s

        def defer(conn: Any) -> None:
            conn.execute(update(s.queued_messages).values(retry_after=NOW + 300, locked_by=None,
                                                          locked_until=None))

        self.pool.call("defer", defer)
        self.assertEqual(self.claim(now=NOW + 10), [])
        self.assertEqual(self.pool.call("next", next_retry_at_txn), NOW + 300)
        self.assertEqual(len(self.claim(now=NOW + 300)), 1)

    def test_release_and_renew_only_touch_own_rows(self) -> None:
        """Release and renewal apply only to rows the holder still owns."""
        queue_messages(self.pool, self.account, ["a@one.test"])
        [row] = self.claim("w1")
        self.assertEqual(self.pool.call("renew", renew_leases_txn, NOW + 30, "w2", [row.id], 60.0), 0)
        self.assertEqual(self.pool.call("renew", renew_leases_txn, NOW + 30, "w1", [row.id], 60.0), 1)
        self.assertEqual(self.pool.call("release", release_txn, "w2", [row.id]), 0)
        self.assertEqual(self.pool.call("release", release_txn, "w1", [row.id]), 1)
        self.assertEqual(len(self.claim("w2")), 1)

    def test_requeue_returns_expired_leases_without_deleting(self) -> None:
        """The requeuer returns a dead worker's rows once the lease has passed, and deletes nothing."""
        queue_messages(self.pool, self.account, ["a@one.test", "b@one.test"])
        self.claim("dead")
        early = self.pool.call("requeue", requeue_txn, NOW + 30)
        self.assertEqual(early.expired_leases, 0)
        late = self.pool.call("requeue", requeue_txn, NOW + 61)
        self.assertEqual(late.expired_leases, 2)
        self.assertEqual(len(self.claim("w2", now=NOW + 61)), 2)
        stats = self.pool.call("stats", queue_stats_txn, NOW + 61)
        self.assertEqual((stats.size, stats.locked), (2, 2))

    def test_stats_count_ready_deferred_locked(self) -> None:
        """Queue statistics split rows into ready, deferred and locked, with the oldest creation time."""
        queue_messages(self.pool, self.account, ["a@one.test", "b@two.test", "c@three.test"])
        self.claim("w1")
        stats = self.pool.call("stats", queue_stats_txn, NOW)
        self.assertEqual((stats.size, stats.ready, stats.deferred, stats.locked), (3, 2, 0, 1))
        self.assertEqual(stats.oldest_created_at, NOW)

    def test_operator_bulk_operations(self) -> None:
        """Operators list, retry and remove rows by message id or by destination domain."""
        stored = queue_messages(self.pool, self.account, ["a@one.test", "b@two.test", "c@two.test"])
        server_id = self.account.server.id
        by_domain = QueueFilter(server_id=server_id, domain="TWO.test")
        self.assertEqual(len(self.pool.call("list", list_queue_txn, by_domain)), 2)
        self.assertEqual(self.pool.call("retry", retry_queued_txn, by_domain), 2)
        by_id = QueueFilter(server_id=server_id, ids=(stored[0].id,))
        self.assertEqual(self.pool.call("remove", remove_queued_txn, by_id), 1)
        self.assertEqual(len(self.pool.call("list", list_queue_txn, QueueFilter(server_id=server_id))), 2)

    def test_concurrent_claims_are_disjoint(self) -> None:
        """Eight threads claiming at once never claim the same row twice."""
        queue_messages(self.pool, self.account, [f"r{i}@d{i % 5}.test" for i in range(60)])
        results: list[list[int]] = []
        lock = threading.Lock()

        def worker(name: str) -> None:
            mine: list[int] = []
            while True:
                rows = self.pool.call("claim", claim_batch_txn, NOW, name, 60.0, 4, ())
                if not rows:
                    break
                mine.extend(r.id for r in rows)
            with lock:
                results.append(mine)

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        claimed = [i for r in results for i in r]
        self.assertEqual(len(claimed), 60)
        self.assertEqual(len(set(claimed)), 60)


globals().update(both_databases(_QueueMixin))

# -*- test-case-name: tests.db.test_leases -*-
"""Role leases in the database: taking, renewing, expiry and takeover races."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from postal.db.leases import Lease, acquire_or_renew_txn, get_lease_txn, release_txn
from postal.db.pool import run_transaction_body
from tests.dbhelpers import both_databases


class _LeaseStoreMixin:
    make_engine: "object"

    def setUp(self) -> None:
        self.engine: Engine = self.make_engine()  # type: ignore[operator]

    def acquire(self, holder: str, now: float, period: float = 10.0, role: str = "cron") -> bool:
        return run_transaction_body(self.engine, "t", acquire_or_renew_txn, role, holder, now, period)

    def lease(self, role: str = "cron") -> Lease | None:
        return run_transaction_body(self.engine, "t", get_lease_txn, role)

    def test_first_contender_takes_a_free_lease(self) -> None:
        """With no row for the role, the first contender takes the lease until now + period."""
        self.assertTrue(self.acquire("a", 100.0))
        self.assertEqual(self.lease(), Lease("cron", "a", 100.0, 110.0))

    def test_holder_renews_and_keeps_acquired_at(self) -> None:
        """Renewing moves expires_at forward and keeps when the lease was first taken."""
        self.acquire("a", 100.0)
        self.assertTrue(self.acquire("a", 105.0))
        self.assertEqual(self.lease(), Lease("cron", "a", 100.0, 115.0))

    def test_live_lease_is_refused_to_others(self) -> None:
        """Another holder cannot take a lease that has not expired."""
        self.acquire("a", 100.0)
        self.assertFalse(self.acquire("b", 109.9))
        self.assertEqual(self.lease(), Lease("cron", "a", 100.0, 110.0))

    def test_expired_lease_is_taken_over(self) -> None:
        """Once expires_at has passed, another holder takes the lease, with a new acquired_at."""
        self.acquire("a", 100.0)
        self.assertTrue(self.acquire("b", 110.0))
        self.assertEqual(self.lease(), Lease("cron", "b", 110.0, 120.0))
        self.assertFalse(self.acquire("a", 111.0))

    def test_roles_are_independent(self) -> None:
        """One holder's lease on cron does not stop another taking requeuer."""
        self.assertTrue(self.acquire("a", 100.0, role="cron"))
        self.assertTrue(self.acquire("b", 100.0, role="requeuer"))
        self.assertEqual(self.lease("requeuer"), Lease("requeuer", "b", 100.0, 110.0))

    def test_release_frees_the_lease_for_its_holder_only(self) -> None:
        """Release by a non-holder does nothing; release by the holder lets the next contender in at once."""
        self.acquire("a", 100.0)
        self.assertFalse(run_transaction_body(self.engine, "t", release_txn, "cron", "b"))
        self.assertTrue(run_transaction_body(self.engine, "t", release_txn, "cron", "a"))
        self.assertIsNone(self.lease())
        self.assertTrue(self.acquire("b", 101.0))

    def test_concurrent_contenders_for_an_expired_lease(self) -> None:
        """Eight threads racing for one expired lease: exactly one wins, and the row names it."""
        self.acquire("old", 0.0)
        self._race(now=50.0)

    def test_concurrent_contenders_for_a_free_lease(self) -> None:
        """Eight threads racing to create the first lease row: exactly one wins."""
        self._race(now=50.0)

    def _race(self, now: float) -> None:
        barrier = threading.Barrier(8)
        results: dict[str, bool] = {}
        errors: list[BaseException] = []

        def contend(name: str) -> None:
            try:
                barrier.wait()
                results[name] = self.acquire(name, now)
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

        threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        winners = [name for name, won in results.items() if won]
        self.assertEqual(len(winners), 1, results)
        lease = self.lease()
        assert lease is not None
        self.assertEqual(lease.holder, winners[0])


globals().update(both_databases(_LeaseStoreMixin))

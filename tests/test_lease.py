# -*- test-case-name: tests.test_lease -*-
"""L{postal.lease.LeaseService}: one active instance per role, on a fake clock."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.db.leases import get_lease_txn
from postal.db.pool import SynchronousDatabasePool
from postal.lease import LeaseService, lease_holder
from tests.dbhelpers import sqlite_engine

PERIOD = 30.0


class _BrokenPool:
    """A pool whose database never answers."""

    dialect = "sqlite"

    def run_in_transaction(self, name: str, fn: object, *args: object) -> Deferred[object]:
        return Deferred.fromCoroutine(self._fail())

    async def _fail(self) -> object:
        raise ConnectionError("database unreachable")


class LeaseServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.pool = SynchronousDatabasePool(sqlite_engine(self))
        self.events: list[str] = []
        # Runs last: every service stopped, so no timer may be left behind.
        self.addCleanup(lambda: self.assertEqual(self.clock.getDelayedCalls(), []))

    def service(self, holder: str, pool: object = None) -> LeaseService:
        service = LeaseService(
            "cron", holder, pool or self.pool, self.clock, PERIOD,  # type: ignore[arg-type]
            on_acquired=lambda: self.events.append(f"{holder} acquired"),
            on_lost=lambda: self.events.append(f"{holder} lost"),
        )
        self.addCleanup(lambda: service.running and service.stopService())
        return service

    def holder(self) -> str | None:
        lease = self.pool.call("t", get_lease_txn, "cron")
        return None if lease is None else lease.holder

    def test_holder_name_looks_like_postals_locker(self) -> None:
        """The holder names host and pid, plus random hex that differs per call."""
        name = lease_holder()
        self.assertRegex(name, r"^host:\S+ pid:\d+ [0-9a-f]{16}$")
        self.assertNotEqual(name, lease_holder())

    def test_first_instance_acquires_at_start(self) -> None:
        """Starting the service takes a free lease at once and calls on_acquired once."""
        a = self.service("a")
        a.startService()
        self.assertTrue(a.held)
        self.assertEqual(self.events, ["a acquired"])
        self.assertEqual(self.holder(), "a")

    def test_standby_waits_while_holder_renews(self) -> None:
        """A second instance stays standby for many periods while the holder keeps renewing."""
        a, b = self.service("a"), self.service("b")
        a.startService()
        b.startService()
        for _ in range(30):
            self.clock.advance(PERIOD / 6)
        self.assertEqual((a.held, b.held), (True, False))
        self.assertEqual(self.events, ["a acquired"])

    def test_standby_takes_over_within_one_period(self) -> None:
        """When the holder stops renewing, the standby holds the lease within one period of the last renewal."""
        a, b = self.service("a"), self.service("b")
        a.startService()
        self.clock.advance(PERIOD / 7)  # the standby polls out of phase with the holder
        b.startService()
        self.clock.advance(PERIOD / 3 - PERIOD / 7)  # a's last renewal happens now
        last_renewal = self.clock.seconds()
        a._loop.stop()  # type: ignore[union-attr]  # a hangs: no more renewals, no release
        while not b.held:
            self.clock.advance(1)
        self.assertLessEqual(self.clock.seconds() - last_renewal, PERIOD)
        self.assertEqual(self.holder(), "b")
        self.assertEqual(self.events, ["a acquired", "b acquired"])

    def test_stolen_lease_calls_on_lost(self) -> None:
        """A holder that finds its lease taken (it stalled too long) calls on_lost at its next attempt."""
        a, b = self.service("a"), self.service("b")
        a.startService()
        a._loop.stop()  # type: ignore[union-attr]
        self.clock.advance(PERIOD)
        b.startService()
        self.assertTrue(b.held)
        a._attempt()
        self.assertFalse(a.held)
        self.assertEqual(self.events, ["a acquired", "b acquired", "a lost"])

    def test_failed_renewal_calls_on_lost(self) -> None:
        """A renewal the database does not answer counts as losing the lease, and is logged."""
        a = self.service("a")
        a.startService()
        a._pool = _BrokenPool()  # type: ignore[assignment]
        self.clock.advance(PERIOD / 3)
        self.assertFalse(a.held)
        self.assertEqual(self.events, ["a acquired", "a lost"])
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        a._pool = self.pool
        self.clock.advance(PERIOD / 3)
        self.assertTrue(a.held)

    def test_stop_finishes_work_then_releases(self) -> None:
        """On stop, on_lost's Deferred is awaited before the lease is released; the standby then takes it at its next attempt."""
        finished: Deferred[None] = Deferred()
        a = LeaseService("cron", "a", self.pool, self.clock, PERIOD,
                         on_acquired=lambda: None, on_lost=lambda: finished)
        b = self.service("b")
        a.startService()
        b.startService()
        stopping = a.stopService()
        self.assertNoResult(stopping)
        self.assertEqual(self.holder(), "a")
        finished.callback(None)
        self.successResultOf(stopping)
        self.assertIsNone(self.holder())
        self.clock.advance(PERIOD / 3)
        self.assertTrue(b.held)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # b's next attempt; a left no timer

    def test_standby_stop_releases_nothing(self) -> None:
        """Stopping a standby leaves the holder's lease alone and calls no callback."""
        a, b = self.service("a"), self.service("b")
        a.startService()
        b.startService()
        self.successResultOf(b.stopService())
        self.assertEqual(self.holder(), "a")
        self.assertEqual(self.events, ["a acquired"])
        self.assertEqual(b.name, "cron-lease")

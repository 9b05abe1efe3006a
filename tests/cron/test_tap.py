# -*- test-case-name: tests.cron.test_tap -*-
"""
The C{postal-cron} tap: the service tree it builds, and that tree taking
the lease and scheduling every task once started.
"""

from __future__ import annotations

import os

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.cron.service import TASK_NAMES, CronService
from postal.db.leases import get_lease_txn
from postal.db.pool import SynchronousDatabasePool
from postal.db.scheduled_tasks import scheduled_tasks_txn
from postal.tap.cron import Options, build, makeService
from tests.cron.fixtures import NOW
from tests.dbhelpers import sqlite_engine


class TapTests(SynchronousTestCase):
    def test_make_service_tree(self) -> None:
        """makeService gives postal-cron with the database, the health site and the cron lease."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "postal.yml")
        with open(path, "w") as f:
            f.write("version: 2\ncron:\n  health_port: 0\n  lease_seconds: 30\n")
        options = Options()
        options.parseOptions(["--config", path])
        top = makeService(options)
        self.assertEqual(top.name, "postal-cron")
        names = [child.name for child in top]  # type: ignore[attr-defined]
        self.assertEqual(names, ["database", "cron"])
        cron = top.getServiceNamed("cron")  # type: ignore[attr-defined]
        self.assertEqual([child.name for child in cron], ["cron-lease"])

    def test_build_takes_lease_and_schedules(self) -> None:
        """Started, the role takes the cron lease and gives every task a next run; stopped, it lets go."""
        reactor = MemoryReactorClock()
        reactor.advance(NOW)
        pool = SynchronousDatabasePool(sqlite_engine(self))
        config = default_config(os.path.abspath(self.mktemp()), cron={"lease_seconds": 30})
        service = build(config, reactor, pool)
        assert isinstance(service, CronService)
        self.assertEqual(reactor.getDelayedCalls(), [])  # building starts nothing, not even DNS timers
        service.startService()
        self.assertTrue(service.scheduler.running)
        lease = pool.call("lease", get_lease_txn, "cron")
        assert lease is not None
        self.assertEqual(lease.expires_at, NOW + 20)
        rows = pool.call("rows", scheduled_tasks_txn)
        self.assertEqual(sorted(r.name for r in rows), sorted(TASK_NAMES))
        self.successResultOf(service.stopService())
        self.assertFalse(service.scheduler.running)
        self.assertIsNone(pool.call("lease", get_lease_txn, "cron"))

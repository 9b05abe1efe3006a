# -*- test-case-name: tests.cron.test_processes -*-
"""
Two real C{twistd -n postal-cron} processes sharing one database: one
holds the cron lease and schedules the tasks, the other waits; when the
active one is killed the standby takes over within one lease period; a
stopped process gives the lease up.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import yaml
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from postal.cron.service import TASK_NAMES
from postal.db.leases import get_lease_txn
from postal.db.migrate import upgrade
from postal.db.pool import SynchronousDatabasePool, make_engine
from postal.db.scheduled_tasks import scheduled_tasks_txn

LEASE_SECONDS = 3


class _Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[BaseException | None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(reason.value)


class CronProcessTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.url = "sqlite:///" + os.path.join(self.folder, "postal.sqlite")
        engine = make_engine(self.url)
        upgrade(engine)
        self.addCleanup(engine.dispose)
        self.pool = SynchronousDatabasePool(engine)

    def spawn(self, name: str) -> tuple[Any, _Collect]:
        folder = os.path.join(self.folder, name)
        os.makedirs(folder)
        config = os.path.join(folder, "postal.yml")
        with open(config, "w") as f:
            yaml.safe_dump({"version": 2, "database": {"url": self.url},
                            "cron": {"health_port": 0, "lease_seconds": LEASE_SECONDS}}, f)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        protocol = _Collect()
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            protocol, twistd, [twistd, "-n", "--pidfile=", "postal-cron", "--config", config],
            env=dict(os.environ), path=folder)

        def kill() -> Deferred[Any] | None:
            if protocol.ended.called:
                return None
            process.signalProcess("KILL")
            return protocol.ended

        self.addCleanup(kill)
        return process, protocol

    def holder(self) -> str | None:
        lease = self.pool.call("lease", get_lease_txn, "cron")
        return None if lease is None else lease.holder

    async def wait_for_holder(self, pid: int | None, within: float, protocol: _Collect) -> float:
        """Poll until the lease names C{pid} (or nobody); return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            holder = self.holder()
            if (pid is None and holder is None) or (pid is not None and holder and f"pid:{pid} " in holder):
                return time.monotonic() - started
            await deferLater(reactor, 0.1, lambda: None)
        self.fail(f"lease holder is {self.holder()!r}, not pid {pid}:\n" + protocol.output.decode(errors="replace"))

    async def test_standby_takes_over(self) -> None:
        """Killing the active process hands the schedule to the standby within one lease period."""
        active, active_out = self.spawn("active")
        await self.wait_for_holder(active.pid, 20, active_out)
        for _ in range(50):
            if len(self.pool.call("rows", scheduled_tasks_txn)) == len(TASK_NAMES):
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(sorted(r.name for r in self.pool.call("rows", scheduled_tasks_txn)), sorted(TASK_NAMES))
        standby, standby_out = self.spawn("standby")
        await deferLater(reactor, 2 * LEASE_SECONDS, lambda: None)
        self.assertIn(f"pid:{active.pid} ", self.holder() or "")
        active.signalProcess("KILL")
        await active_out.ended
        took = await self.wait_for_holder(standby.pid, LEASE_SECONDS + 2, standby_out)
        self.assertLessEqual(took, LEASE_SECONDS + 0.5)
        # Let the standby act on the lease before stopping it (its reactor
        # may see the signal before the commit that took the lease).
        for _ in range(100):
            if b"Cron scheduler running" in standby_out.output:
                break
            await deferLater(reactor, 0.1, lambda: None)
        standby.signalProcess("TERM")
        ended = await standby_out.ended
        self.assertIsInstance(ended, (ProcessDone, ProcessTerminated))
        self.assertIsNone(self.holder(), standby_out.output.decode(errors="replace"))
        if isinstance(ended, ProcessTerminated):
            self.assertIn(ended.signal, (None, signal.SIGTERM))

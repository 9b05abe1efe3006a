# -*- test-case-name: tests.supervisor.test_monitor -*-
"""
L{RoleMonitor} over a fake process reactor and a L{Clock}: restart counts,
back-off after quick deaths, inherited sockets mapped onto descriptors 3+,
a stop that waits for every child, and rolling restarts of one role.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.supervisor.monitor import InheritingReactor, RoleMonitor
from postal.supervisor.plan import RestartPolicy, make_plan


class _FakeProcess:
    def __init__(self, reactor: "_ProcessClock", proto: Any, pid: int) -> None:
        self.reactor, self.proto, self.pid = reactor, proto, pid
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def end(self, status: int | None = 0) -> None:
        reason = ProcessDone(0) if status == 0 else ProcessTerminated(exitCode=status)
        self.proto.processEnded(Failure(reason))


class _ProcessClock(Clock):
    """A Clock that also 'spawns' processes, recording each call."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[str, dict[str, Any], _FakeProcess]] = []
        self._next_pid = 1000

    def spawnProcess(self, proto: Any, executable: str, args: Any, env: Any = None, path: Any = None,
                     uid: Any = None, gid: Any = None, usePTY: bool = False, childFDs: Any = None) -> _FakeProcess:
        self._next_pid += 1
        process = _FakeProcess(self, proto, self._next_pid)
        self.spawned.append((proto.name, {"args": args, "env": env, "childFDs": childFDs}, process))
        proto.makeConnection(process)
        return process

    def running(self, name: str) -> _FakeProcess:
        return [p for n, _, p in self.spawned if n == name][-1]


POLICY = RestartPolicy(threshold=5.0, min_delay=1.0, max_delay=8.0, kill_time=10.0)


def _monitor(test: SynchronousTestCase, **processes: int) -> tuple[RoleMonitor, _ProcessClock]:
    reactor = _ProcessClock()
    config = default_config("/srv", processes=processes)
    plan = make_plan(config, ["worker", "cron"], POLICY)
    monitor = RoleMonitor(reactor, plan, {}, test.mktemp(), environ={"PATH": "/bin"})
    monitor.startService()
    return monitor, reactor


class RestartTests(SynchronousTestCase):
    def test_children_start_with_the_service(self) -> None:
        """Starting the monitor spawns every planned child once, with the planned environment."""
        monitor, reactor = _monitor(self, worker=2)
        self.assertEqual([name for name, _, _ in reactor.spawned], ["worker-1", "worker-2", "cron"])
        env = reactor.spawned[1][1]["env"]
        self.assertEqual((env["PATH"], env["WORKER_HEALTH_PORT"]), ("/bin", "9190"))
        self.assertEqual(monitor.pid("cron"), reactor.running("cron").pid)
        self.assertEqual(monitor.starts, {"worker-1": 1, "worker-2": 1, "cron": 1})

    def test_quick_deaths_back_off_doubling(self) -> None:
        """A child dying within the threshold is restarted after 1s, then 2s, 4s, capped at max_delay; restarts are counted."""
        monitor, reactor = _monitor(self)
        delays = []
        for _ in range(5):
            reactor.running("cron").end(1)
            self.assertIsNone(monitor.pid("cron"))
            waited = 0.0
            while monitor.pid("cron") is None:
                reactor.advance(0.5)
                waited += 0.5
            delays.append(waited)
        self.assertEqual(delays, [1.0, 2.0, 4.0, 8.0, 8.0])
        self.assertEqual(monitor.starts["cron"], 6)

    def test_long_runner_restarts_at_once(self) -> None:
        """A child that ran past the threshold is restarted immediately and its back-off reset."""
        monitor, reactor = _monitor(self)
        reactor.advance(60)
        first = monitor.pid("cron")
        reactor.running("cron").end(None)
        reactor.advance(0)
        self.assertNotIn(monitor.pid("cron"), (None, first))
        self.assertEqual(monitor.uptime("cron"), 0.0)

    def test_stop_waits_for_every_child(self) -> None:
        """Stopping sends SIGTERM to each child and fires only once all have exited; stragglers get SIGKILL after kill_time."""
        monitor, reactor = _monitor(self)
        worker, cron = reactor.running("worker"), reactor.running("cron")
        stopped = monitor.stopService()
        self.assertEqual((worker.signals, cron.signals), (["TERM"], ["TERM"]))
        worker.end(0)
        reactor.advance(1)
        self.assertNoResult(stopped)
        reactor.advance(POLICY.kill_time)
        self.assertEqual(cron.signals, ["TERM", "KILL"])
        cron.end(None)
        reactor.advance(1)
        self.successResultOf(stopped)
        self.assertEqual(len(reactor.spawned), 2)

    def test_restart_role_is_rolling(self) -> None:
        """Restarting a role stops its processes one at a time, each after the previous one is back."""
        monitor, reactor = _monitor(self, worker=2)
        reactor.advance(60)
        done = Deferred.fromCoroutine(monitor.restart_role("worker"))
        first, second = reactor.running("worker-1"), reactor.running("worker-2")
        self.assertEqual((first.signals, second.signals), (["TERM"], []))
        first.end(0)
        reactor.advance(0.1)
        self.assertEqual(second.signals, ["TERM"])
        second.end(0)
        reactor.advance(0.1)
        self.assertEqual(self.successResultOf(done), ["worker-1", "worker-2"])
        self.assertEqual(reactor.running("cron").signals, [])


class InheritTests(SynchronousTestCase):
    def test_shared_sockets_become_descriptors_from_3(self) -> None:
        """A child with shared listeners is spawned with them mapped onto fds 3, 4; others keep the default childFDs."""
        reactor = _ProcessClock()
        config = default_config("/srv", processes={"smtp": 2}, smtp_server={
            "default_bind_address": "127.0.0.1", "default_port": 2525,
            "tls_enabled": True, "tls_port": 4650})
        plan = make_plan(config, ["smtp", "cron"])
        plain, secure = socket.socket(), socket.socket()
        self.addCleanup(plain.close)
        self.addCleanup(secure.close)
        RoleMonitor(reactor, plan, {"smtp": plain, "smtps": secure}, self.mktemp()).startService()
        fds = {name: call["childFDs"] for name, call, _ in reactor.spawned}
        expected = {0: "w", 1: "r", 2: "r", 3: plain.fileno(), 4: secure.fileno()}
        self.assertEqual(fds, {"smtp-1": expected, "smtp-2": expected, "cron": None})

    def test_inheriting_reactor_delegates_time(self) -> None:
        """InheritingReactor is the wrapped reactor's clock."""
        clock = Clock()
        wrapped = InheritingReactor(clock, {})
        calls: list[int] = []
        wrapped.callLater(2, calls.append, 1)
        clock.advance(2)
        self.assertEqual((calls, wrapped.seconds(), wrapped.getDelayedCalls()), ([1], 2.0, []))

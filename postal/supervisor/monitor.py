# -*- test-case-name: tests.supervisor.test_monitor -*-
"""
L{RoleMonitor}: Twisted's L{ProcessMonitor} running the plan's children,
plus what the supervisor needs on top: shared listening sockets handed to
the children that use them, a start count per child (restarts), a stop that
waits until every child has exited, and rolling restarts of one role.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, Callable, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.runner.procmon import ProcessMonitor
from zope.interface import implementer

from postal.supervisor.childlog import ChildOutputObserver
from postal.supervisor.plan import ChildSpec, SupervisorPlan

__all__ = ["InheritingReactor", "RoleMonitor", "child_environment", "child_arguments"]

#: First descriptor number of inherited sockets (systemd's SD_LISTEN_FDS_START).
_FIRST_FD = 3

#: How often waits poll the process table; waits are bounded separately.
_POLL = 0.05


@implementer(IReactorProcess, IReactorTime)
class InheritingReactor:
    """
    The reactor as L{ProcessMonitor} sees it: C{spawnProcess} also maps the
    shared sockets a child needs onto descriptors 3, 4, ... of that child
    (found by the process protocol's C{name}, which ProcessMonitor sets).
    Everything else is the real reactor.
    """

    def __init__(self, reactor: Any, inherit: Mapping[str, Mapping[int, int]]) -> None:
        self._reactor = reactor
        self._inherit = inherit

    def spawnProcess(self, processProtocol: Any, executable: Any, args: Any = (), env: Any = None,
                     path: Any = None, uid: Any = None, gid: Any = None, usePTY: bool = False,
                     childFDs: Any = None) -> Any:
        extra = self._inherit.get(getattr(processProtocol, "name", None) or "")
        if extra:
            childFDs = {0: "w", 1: "r", 2: "r", **extra}
        return self._reactor.spawnProcess(processProtocol, executable, args, env, path, uid, gid,
                                          usePTY, childFDs)

    def callLater(self, delay: float, callable: Callable[..., Any], *args: object,
                  **kwargs: object) -> IDelayedCall:
        delayed: IDelayedCall = self._reactor.callLater(delay, callable, *args, **kwargs)
        return delayed

    def seconds(self) -> float:
        return float(self._reactor.seconds())

    def getDelayedCalls(self) -> Any:
        return self._reactor.getDelayedCalls()


def child_environment(spec: ChildSpec, base: Mapping[str, str]) -> dict[str, str]:
    """
    The child's environment: the supervisor's, the spec's overrides,
    C{POSTAL_SUPERVISOR_PID} and, for a child that inherits sockets,
    C{LISTEN_FDS}/C{LISTEN_FDNAMES} (L{postal.supervisor.launch} adds
    C{LISTEN_PID}).
    """
    env = {k: v for k, v in base.items() if not k.startswith("LISTEN_")}
    env.update(dict(spec.env))
    env["POSTAL_SUPERVISOR_PID"] = str(os.getpid())
    if spec.listeners:
        env["LISTEN_FDS"] = str(len(spec.listeners))
        env["LISTEN_FDNAMES"] = ":".join(listener.name for listener in spec.listeners)
    return env


def child_arguments(spec: ChildSpec) -> list[str]:
    """The command line: the spec's, through L{postal.supervisor.launch}."""
    return [sys.executable, "-m", "postal.supervisor.launch", *spec.args]


class RoleMonitor(ProcessMonitor):
    """The plan's children under one L{ProcessMonitor}."""

    def __init__(self, reactor: Any, plan: SupervisorPlan, shared: Mapping[str, socket.socket],
                 log_directory: str, environ: Mapping[str, str] | None = None) -> None:
        self._plan = plan
        self._shared = dict(shared)
        inherit = {
            spec.name: {_FIRST_FD + i: self._shared[l.name].fileno() for i, l in enumerate(spec.listeners)}
            for spec in plan.children if spec.listeners
        }
        super().__init__(InheritingReactor(reactor, inherit))
        self._time: Any = reactor
        self.threshold = plan.policy.threshold  # type: ignore[assignment]
        self.killTime = plan.policy.kill_time  # type: ignore[assignment]
        self.minRestartDelay = plan.policy.min_delay  # type: ignore[assignment]
        self.maxRestartDelay = plan.policy.max_delay  # type: ignore[assignment]
        self.output = ChildOutputObserver(log_directory)
        self.log = Logger(namespace="postal.supervisor.children", observer=self.output)
        self.starts: dict[str, int] = {}
        self._environ = environ

    def startService(self) -> None:
        """
        Add and start the children.  They are added here, not earlier, because
        their environment names this process, which twistd may have forked
        (C{--daemon}) since the service was made.
        """
        base = os.environ if self._environ is None else self._environ
        for spec in self._plan.children:
            if spec.name not in self.delay:
                self.addProcess(spec.name, child_arguments(spec), env=child_environment(spec, base))
        super().startService()

    @property
    def plan(self) -> SupervisorPlan:
        return self._plan

    def startProcess(self, name: str) -> None:
        if name not in self.protocols:
            self.starts[name] = self.starts.get(name, 0) + 1
        super().startProcess(name)

    def pid(self, name: str) -> int | None:
        """The running child's pid, or None while it is down."""
        proto = self.protocols.get(name)
        transport = proto.transport if proto is not None else None
        pid = getattr(transport, "pid", None)
        return pid if isinstance(pid, int) else None

    def uptime(self, name: str) -> float | None:
        if name not in self.protocols:
            return None
        return float(self._time.seconds() - self.timeStarted[name])

    def stopService(self) -> Deferred[None]:  # type: ignore[override]
        """Stop every child (SIGTERM, SIGKILL after C{kill_time}); fires once all have exited."""
        super().stopService()
        for sock in self._shared.values():
            sock.close()
        return Deferred.fromCoroutine(self._until(lambda: not self.protocols,
                                                  self.killTime + 5.0))

    async def _until(self, done: Any, timeout: float) -> None:
        waited = 0.0
        while not done() and waited < timeout:
            await deferLater(self._time, _POLL, lambda: None)
            waited += _POLL

    async def restart_role(self, role: str | None) -> list[str]:
        """
        Restart every child of C{role} (all children if None) one after the
        other, each once its predecessor is running again, so a role of
        several processes keeps serving; returns the names restarted.
        """
        names = [spec.name for spec in self._plan.children if role is None or spec.role == role]
        for name in names:
            await self._restart_one(name)
        return names

    async def _restart_one(self, name: str) -> None:
        old = self.pid(name)
        pending = self.restart.get(name)
        if old is None and pending is not None and pending.active():
            pending.cancel()  # backing off after quick deaths: try again now
            self.startProcess(name)
            return
        self.stopProcess(name)
        await self._until(lambda: self.pid(name) not in (None, old),
                          self.killTime + self.maxRestartDelay + 5.0)

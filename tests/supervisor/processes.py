"""
Helpers for tests that run the supervisor as real processes: a temporary
installation with free ports, bounded waits on the real reactor, and
cleanup that leaves no process behind even when a test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from typing import Any, Awaitable, Callable

import yaml
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from postal.db.migrate import upgrade
from postal.db.pool import make_engine
from postal.supervisor.control import SupervisorNotRunning, request
from tests.realworld import free_port

POSTAL = os.path.join(os.path.dirname(sys.executable), "postal")




class Collect(ProcessProtocol):
    """Keeps a process's output; C{ended} fires with its exit reason."""

    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[BaseException] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        value = reason.value
        assert value is not None
        self.ended.callback(value)


def processes_mentioning(text: str) -> list[int]:
    """Pids of this user's processes whose command line contains C{text}."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().split(b") ", 1)[1][:1] != b"Z"
    except OSError:
        return False


class Installation:
    """A temporary installation (short path: the control socket lives in it)."""

    def __init__(self, test: TestCase, processes: dict[str, int]) -> None:
        self.folder = tempfile.mkdtemp(prefix="psv")
        test.addCleanup(shutil.rmtree, self.folder, True)
        self.config_path = os.path.join(self.folder, "postal.yml")
        self.smtp_port, self.smtp_health, self.cron_health = free_port(), free_port(), free_port()
        counts = {"web": 0, "smtp": 0, "worker": 0, "cron": 0, "requeuer": 0, "fast": 0, **processes}
        url = "sqlite:///" + os.path.join(self.folder, "postal.sqlite")
        with open(self.config_path, "w") as handle:
            yaml.safe_dump({
                "version": 2, "database": {"url": url},
                "smtp_server": {"default_port": self.smtp_port, "default_bind_address": "127.0.0.1",
                                "health_port": self.smtp_health},
                "cron": {"health_port": self.cron_health}, "processes": counts,
            }, handle)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        self.socket_path = os.path.join(self.folder, "run", "supervisor.sock")
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith(("POSTAL_", "LISTEN_"))}
        self.environ["POSTAL_CONFIG_FILE_PATH"] = self.config_path
        self._spawned: list[Collect] = []
        test.addCleanup(lambda: Deferred.fromCoroutine(self.kill_everything()))

    def spawn(self, *argv: str) -> tuple[Collect, Any]:
        """Run C{postal ARGV...} for this installation."""
        protocol = Collect()
        transport = reactor.spawnProcess(protocol, POSTAL, [POSTAL, *argv], env=self.environ,
                                         path=self.folder)
        self._spawned.append(protocol)
        return protocol, transport

    async def postal(self, *argv: str) -> tuple[int, str]:
        """Run C{postal ARGV...} to completion: exit status and output."""
        protocol, _ = self.spawn(*argv)
        reason = await protocol.ended
        return getattr(reason, "exitCode", None) or 0, protocol.output.decode("utf-8", "replace")

    async def status(self) -> dict[str, Any] | None:
        """The supervisor's status, or None when it does not answer (yet)."""
        try:
            answer: dict[str, Any] = await deferToThread(request, self.socket_path, {"command": "status"}, 10.0)
        except (SupervisorNotRunning, OSError, ValueError):
            return None
        return answer

    async def kill_everything(self) -> None:
        """
        SIGKILL every process started for this installation (the supervisor
        and its children) and wait, bounded, for the ones this test spawned.
        """
        for pid in processes_mentioning(self.config_path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for protocol in self._spawned:
            await protocol.ended.addTimeout(10, reactor)


async def eventually(condition: Callable[[], Awaitable[Any]], timeout: float, what: str,
                     interval: float = 0.2) -> Any:
    """Poll C{condition} on the real reactor until it returns something true; fail after C{timeout}."""
    waited = 0.0
    while True:
        result = await condition()
        if result:
            return result
        if waited >= timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await deferLater(reactor, interval, lambda: None)
        waited += interval

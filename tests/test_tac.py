# -*- test-case-name: tests.test_tac -*-
"""
postal.tac and L{postal.tap.allinone}: every role that exists, in one tree
sharing one database pool and one health site; and a real C{twistd -ny
postal.tac} that stops cleanly on SIGTERM.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import yaml
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, loadApplication
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, Logger, LogPublisher, eventFromJSON, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from postal.db.pool import DatabasePool
from postal.tap.allinone import ROLES, available_roles
from tests.realworld import free_port

TAC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "postal.tac")




def write_config(folder: str, health_port: int = 0) -> str:
    """A config with every listener on an ephemeral port, SQLite beside it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "postal.yml")
    with open(path, "w") as f:
        yaml.safe_dump({
            "version": 2,
            "web_server": {"default_port": 0},
            "smtp_server": {"default_port": 0, "default_bind_address": "127.0.0.1", "health_port": 0},
            "worker": {"health_port": health_port},
            "cron": {"health_port": 0},
            "requeuer": {"health_port": 0},
            "fast": {"health_port": 0, "http_port": 0, "https_port": 0, "bind_address": "127.0.0.1"},
        }, f)
    return path


class TacTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = os.path.abspath(self.mktemp())
        path = write_config(self.folder, health_port=9191)
        previous = os.environ.get("POSTAL_CONFIG_FILE_PATH")
        os.environ["POSTAL_CONFIG_FILE_PATH"] = path
        self.addCleanup(self._restore, previous)

    def _restore(self, previous: str | None) -> None:
        if previous is None:
            del os.environ["POSTAL_CONFIG_FILE_PATH"]
        else:
            os.environ["POSTAL_CONFIG_FILE_PATH"] = previous

    def load(self) -> MultiService:
        # Building roles may schedule timers on the global reactor before
        # anything starts (twisted.names' Resolver re-reads resolv.conf every
        # minute from __init__); cancel them so later real-reactor tests
        # start clean.
        before = set(reactor.getDelayedCalls())  # type: ignore[attr-defined]
        self.addCleanup(lambda: [call.cancel() for call in reactor.getDelayedCalls()  # type: ignore[attr-defined]
                                 if call not in before and call.active()])
        application = loadApplication(TAC, "python")
        self.application = application
        top = IService(application)
        return top.getServiceNamed("postal-allinone")  # type: ignore[no-any-return]

    def test_tree_has_shared_pieces_then_each_existing_role(self) -> None:
        """postal-allinone holds the database, the health site, then every role whose tap module has build(), in ROLES order."""
        tree = self.load()
        names = [service.name for service in tree]
        roles = [role for role in ROLES if role in available_roles()]
        self.assertEqual(names, ["database", "health"] + roles)

    def test_one_database_pool_for_all_roles(self) -> None:
        """There is exactly one DatabasePool in the whole tree, on the configured database."""
        tree = self.load()
        pools = []

        def walk(service: object) -> None:
            if isinstance(service, DatabasePool):
                pools.append(service)
            if isinstance(service, MultiService):
                for child in service:
                    walk(child)

        walk(tree)
        self.assertEqual(len(pools), 1)
        self.assertEqual(str(pools[0].engine.url), f"sqlite:///{self.folder}/postal.sqlite")

    def test_health_site_on_worker_health_port(self) -> None:
        """The shared health site listens on worker.health_port, on 127.0.0.1."""
        health = self.load().getServiceNamed("health")
        self.assertIsInstance(health, StreamServerEndpointService)
        endpoint = health.endpoint
        self.assertEqual((endpoint._port, endpoint._interface), (9191, "127.0.0.1"))

    def test_observer_writes_allinone_log(self) -> None:
        """The application's log observer writes JSON lines to log/allinone.log, and text to stdout."""
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        self.load()
        observer = self.application.getComponent(ILogObserver)
        Logger(namespace="postal.test", observer=LogPublisher(observer)).info("hello {n}", n=1)
        observer.close()
        with open(os.path.join(self.folder, "log", "allinone.log")) as f:
            line = json.loads(f.readline())
        self.assertEqual((line["log_format"], line["n"]), ("hello {n}", 1))
        self.assertIn("[postal.test#info] hello 1", stdout.getvalue())

    def test_bad_config_exits_naming_the_key(self) -> None:
        """A bad value stops the tac with exit status 1 and a message naming the key."""
        with open(os.environ["POSTAL_CONFIG_FILE_PATH"], "w") as f:
            f.write("version: 2\nworker:\n  health_port: lots\n")
        errors = []
        self.patch(sys, "stderr", type("W", (), {"write": lambda self, s: errors.append(s)})())
        with self.assertRaises(SystemExit) as raised:
            self.load()
        self.assertEqual(raised.exception.code, 1)
        self.assertIn("worker.health_port: expected an integer", "".join(errors))


class _Twistd(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: Deferred[BaseException] = Deferred()
        self.output = b""

    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.output += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(reason.value)  # the exception: a Failure would errback


class TwistdTacTests(TestCase):
    """A real C{twistd -ny postal.tac} in a subprocess."""

    timeout = 60

    async def test_sigterm_stops_cleanly(self) -> None:
        """
        twistd -ny postal.tac serves /health, and on SIGTERM stops its
        services, stops the reactor, and exits by the same signal (twistd
        re-raises it after a clean shutdown so supervisors see why it
        ended), having logged JSON lines to log/allinone.log and text to
        stdout.
        """
        folder = os.path.abspath(self.mktemp())
        port = free_port()
        config = write_config(folder, health_port=port)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        protocol = _Twistd()
        env = dict(os.environ, POSTAL_CONFIG_FILE_PATH=config)
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            protocol, twistd, [twistd, "-n", "--pidfile=", "-y", TAC], env=env, path=folder)

        def kill() -> object:
            if not protocol.ended.called:
                process.signalProcess("KILL")
            return protocol.ended

        self.addCleanup(kill)
        await self._wait_healthy(port, protocol)
        process.signalProcess("TERM")
        reason = await protocol.ended
        output = protocol.output.decode(errors="replace")
        assert isinstance(reason, ProcessTerminated), output
        self.assertEqual(reason.signal, signal.SIGTERM, output)
        with open(os.path.join(folder, "log", "allinone.log")) as f:
            messages = [formatEvent(eventFromJSON(line)) for line in f]
        self.assertIn("Received SIGTERM, shutting down.", messages)
        self.assertIn(f"(TCP Port {port} Closed)", messages)  # the health listener stopped
        self.assertIn("Server Shut Down.", messages)
        self.assertIn("Main loop terminated.", output)

    async def _wait_healthy(self, port: int, protocol: _Twistd) -> None:
        await wait_healthy(self, port, protocol)


async def wait_healthy(case: TestCase, port: int, protocol: _Twistd) -> None:
    """Poll /health on C{port} every 0.1s until it answers 200 (20s at most)."""
    connections = HTTPConnectionPool(reactor, persistent=False)
    agent = Agent(reactor, pool=connections)
    for _ in range(200):
        if protocol.ended.called:
            case.fail("twistd exited early:\n" + protocol.output.decode(errors="replace"))
        try:
            response = await agent.request(b"GET", f"http://127.0.0.1:{port}/health".encode())
            if response.code == 200:
                return
        except ConnectError:
            pass
        await deferLater(reactor, 0.1, lambda: None)
    case.fail("twistd never became healthy:\n" + protocol.output.decode(errors="replace"))

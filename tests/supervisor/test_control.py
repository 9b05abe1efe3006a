# -*- test-case-name: tests.supervisor.test_control -*-
"""
The control channel (one JSON line each way) and the status it serves:
the protocol over a StringTransport, the synchronous client against a real
UNIX socket, the health probe against a real HTTP site, and the table
C{postal status} prints.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint
from twisted.internet.threads import deferToThread
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from postal.cli.supervisor import status_lines
from postal.supervisor.control import ControlProtocol, SupervisorNotRunning, control_factory, request, socket_in_use
from postal.supervisor.status import http_probe


async def _status(message: dict[str, Any]) -> dict[str, Any]:
    return {"children": [], "asked": message}


async def _broken(message: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("boom")


def _answer(line: bytes) -> tuple[dict[str, Any], StringTransport]:
    protocol = ControlProtocol({"status": _status, "restart": _broken})
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(line)
    return json.loads(transport.value()), transport


class ProtocolTests(SynchronousTestCase):
    def test_command_answered_then_closed(self) -> None:
        """A known command gets its handler's answer as one JSON line, then the connection closes."""
        answer, transport = _answer(b'{"command": "status"}\n')
        self.assertEqual(answer, {"children": [], "asked": {"command": "status"}})
        self.assertTrue(transport.value().endswith(b"\n"))
        self.assertTrue(transport.disconnecting)

    def test_bad_requests(self) -> None:
        """Unknown commands, non-JSON lines and handler failures are answered with an error."""
        self.assertEqual(_answer(b'{"command": "reboot"}\n')[0], {"error": "unknown command"})
        self.assertEqual(_answer(b"status\n")[0], {"error": "not a JSON object"})
        self.assertEqual(_answer(b'{"command": "restart"}\n')[0], {"error": "RuntimeError: boom"})
        self.flushLoggedErrors(RuntimeError)


class ClientTests(TestCase):
    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="psv")
        self.addCleanup(shutil.rmtree, self.folder)
        self.path = os.path.join(self.folder, "s.sock")

    async def test_request_over_a_unix_socket(self) -> None:
        """request() sends one command and returns the decoded answer; socket_in_use sees the listener."""
        port = await UNIXServerEndpoint(reactor, self.path, mode=0o600).listen(control_factory({"status": _status}))
        self.addCleanup(port.stopListening)
        answer = await deferToThread(request, self.path, {"command": "status"})
        self.assertEqual(answer["asked"], {"command": "status"})
        self.assertTrue(socket_in_use(self.path))
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_nothing_listening(self) -> None:
        """Without a supervisor request() raises SupervisorNotRunning, also for a stale socket file."""
        self.assertRaises(SupervisorNotRunning, request, self.path, {"command": "status"})
        self.assertFalse(socket_in_use(self.path))
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(self.path)
        stale.close()
        self.assertRaises(SupervisorNotRunning, request, self.path, {"command": "status"})
        self.assertFalse(socket_in_use(self.path))


class ProbeTests(TestCase):
    async def test_probe_reports_status_and_body(self) -> None:
        """The health probe returns the status code and body of a real HTTP answer."""
        root = Resource()
        root.putChild(b"health", Data(b"OK", "text/plain"))
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(root))
        self.addCleanup(port.stopListening)
        probe = http_probe(reactor)
        number = port.getHost().port
        self.assertEqual(await probe(f"http://127.0.0.1:{number}/health"), {"status": 200, "body": "OK"})
        self.assertEqual((await probe(f"http://127.0.0.1:{number}/nothing"))["status"], 404)

    async def test_probe_reports_refusal(self) -> None:
        """A closed port is reported as refused, not raised."""
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(Resource()))
        number = port.getHost().port
        await port.stopListening()
        self.assertEqual(await http_probe(reactor)(f"http://127.0.0.1:{number}/health"),
                         {"error": "connection refused"})


class StatusTableTests(SynchronousTestCase):
    def test_table(self) -> None:
        """postal status prints the supervisor line, one row per process with pid or down, uptime, restarts and health."""
        answer = {
            "supervisor": {"pid": 10, "uptime": 3725.0, "config": "/srv/postal.yml"},
            "children": [
                {"name": "smtp-1", "running": True, "pid": 11, "uptime": 65.2, "restarts": 0,
                 "health": {"url": "u", "status": 200, "body": "OK"}},
                {"name": "worker", "running": False, "pid": None, "uptime": None, "restarts": 3,
                 "health": {"url": "u"}},
                {"name": "cron", "running": True, "pid": 13, "uptime": 5.0, "restarts": 1,
                 "health": {"url": "u", "error": "connection refused"}},
            ],
            "skipped_roles": ["fast"],
        }
        self.assertEqual(status_lines(answer), [
            "supervisor pid 10, up 1h2m, config /srv/postal.yml",
            "NAME             PID   UPTIME RESTARTS  HEALTH",
            "smtp-1            11     1m5s        0  200 OK",
            "worker          down        -        3  -",
            "cron              13       5s        1  error: connection refused",
            "not installed: fast",
        ])

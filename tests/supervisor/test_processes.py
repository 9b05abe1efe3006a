# -*- test-case-name: tests.supervisor.test_processes -*-
"""
The supervisor as operators run it (C{postal start}), with real role
processes (smtp and cron) on free ports in a temporary installation: the
children start and answer on their health endpoints, a child killed with
SIGKILL is restarted and serves again, C{postal status} and
C{postal restart} work, SIGTERM stops everything and leaves no process
behind, and a taken port stops C{postal start} before anything starts.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from postal.supervisor.status import http_probe
from tests.supervisor.processes import Installation, alive, eventually, processes_mentioning

START = 60.0


def _children(status: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {child["name"]: child for child in (status or {}).get("children", [])}


def _smtp_banner(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        code, _ = client.noop()
    return code


class SupervisorProcessTests(TestCase):
    timeout = 150

    async def _started(self, site: Installation, names: set[str]) -> dict[str, Any]:
        """Start the supervisor in the foreground and wait until every child is healthy."""
        site.spawn("start", "--config", site.config_path)

        async def healthy() -> dict[str, Any] | None:
            status = await site.status()
            children = _children(status)
            if set(children) == names and all(c["health"].get("status") == 200 for c in children.values()):
                return status
            return None

        status: dict[str, Any] = await eventually(healthy, START, "every child healthy")
        return status

    async def test_children_serve_restart_and_report(self) -> None:
        """The children answer on their health ports; a SIGKILLed child comes back and serves; status and restart work from the CLI."""
        site = Installation(self, {"smtp": 1, "cron": 1})
        status = await self._started(site, {"smtp", "cron"})
        probe = http_probe(reactor)
        self.assertEqual(await probe(f"http://127.0.0.1:{site.cron_health}/health"), {"status": 200, "body": "OK"})
        self.assertEqual(await probe(f"http://127.0.0.1:{site.smtp_health}/health"), {"status": 200, "body": "OK"})
        self.assertEqual(await deferToThread(_smtp_banner, site.smtp_port), 250)

        old = _children(status)["smtp"]["pid"]
        os.kill(old, signal.SIGKILL)

        async def back() -> dict[str, Any] | None:
            smtp = _children(await site.status()).get("smtp", {})
            fine = smtp.get("pid") not in (None, old) and smtp["health"].get("status") == 200
            return smtp if fine else None

        smtp = await eventually(back, START, "the killed smtp child to be back")
        self.assertEqual(smtp["restarts"], 1)
        self.assertFalse(alive(old))
        self.assertEqual(await deferToThread(_smtp_banner, site.smtp_port), 250)

        code, out = await site.postal("status", "--config", site.config_path)
        self.assertEqual(code, 0, out)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^supervisor pid \d+, up \d+")
        rows = {line.split()[0]: line.split() for line in lines[2:4]}
        self.assertEqual(rows["smtp"][1:2] + rows["smtp"][3:], [str(smtp["pid"]), "1", "200", "OK"])
        self.assertEqual(rows["cron"][3:], ["0", "200", "OK"])

        cron_before = _children(await site.status())["cron"]["pid"]
        code, out = await site.postal("restart", "cron", "--json", "--config", site.config_path)
        self.assertEqual((code, json.loads(out)), (0, {"restarted": ["cron"]}))
        code, out = await site.postal("status", "--json", "--config", site.config_path)
        cron = _children(json.loads(out))["cron"]
        self.assertNotIn(cron["pid"], (None, cron_before))
        self.assertEqual((cron["restarts"], _children(json.loads(out))["smtp"]["pid"]), (1, smtp["pid"]))
        self.assertTrue(os.path.exists(os.path.join(site.folder, "log", "supervisor.log")))

    async def test_sigterm_stops_every_child(self) -> None:
        """SIGTERM to the supervisor stops every child; nothing started for the installation is left running."""
        site = Installation(self, {"cron": 1, "smtp": 1})
        status = await self._started(site, {"cron", "smtp"})
        pids = [status["supervisor"]["pid"]] + [c["pid"] for c in status["children"]]
        os.kill(pids[0], signal.SIGTERM)

        async def gone() -> bool:
            return not any(alive(pid) for pid in pids) and not processes_mentioning(site.config_path)

        await eventually(gone, 40.0, "the supervisor and its children to exit")
        self.assertIsNone(await site.status())

    async def test_taken_port_stops_start(self) -> None:
        """postal start with a taken SMTP port exits 1 naming the key, and starts nothing."""
        site = Installation(self, {"cron": 1, "smtp": 1})
        holder = socket.socket()
        holder.bind(("127.0.0.1", site.smtp_port))
        holder.listen(1)
        self.addCleanup(holder.close)
        code, out = await site.postal("start", "--config", site.config_path)
        self.assertEqual((code, out), (1, f"postal: cannot start: smtp_server.default_port: port "
                                          f"{site.smtp_port} on 127.0.0.1 is already in use\n"))
        self.assertEqual(processes_mentioning(site.config_path), [])
        code, out = await site.postal("status", "--config", site.config_path)
        self.assertEqual(code, 1)
        self.assertIn("the supervisor is not running", out)

    async def test_two_smtp_processes_share_one_port(self) -> None:
        """
        With processes.smtp: 2 both SMTP children accept on the one SMTP
        port (a socket the supervisor binds and passes down); with one of
        them killed, the other keeps serving the port.
        """
        site = Installation(self, {"smtp": 2})
        status = await self._started(site, {"smtp-1", "smtp-2"})
        self.assertEqual(await deferToThread(_smtp_banner, site.smtp_port), 250)
        first = _children(status)["smtp-1"]["pid"]
        os.kill(first, signal.SIGSTOP)
        self.addCleanup(lambda: alive(first) and os.kill(first, signal.SIGCONT))
        # A stopped process accepts nothing: every connection now lands on smtp-2.
        for _ in range(3):
            self.assertEqual(await deferToThread(_smtp_banner, site.smtp_port), 250)
        os.kill(first, signal.SIGCONT)

# -*- test-case-name: tests.tap.test_twistd -*-
"""
Each role as twistd runs it: C{twistd -n postal-<role> --config X} in a
subprocess serves /health, writes JSON lines to log/<role>.log and stops
cleanly on SIGTERM.  Covers every plugin that exists and has a health port.
"""

from __future__ import annotations

import os
import signal
import sys

import yaml
from twisted.internet import reactor
from twisted.internet.error import ProcessTerminated
from twisted.logger import eventFromJSON, formatEvent
from twisted.trial.unittest import SkipTest, TestCase

from tests.test_plugins import _plugin_files
from tests.realworld import free_port
from tests.test_tac import _Twistd, wait_healthy, write_config

#: The config group holding each role's health_port.
HEALTH_GROUP = {"smtp": "smtp_server", "worker": "worker", "cron": "cron", "requeuer": "requeuer", "fast": "fast"}


class TwistdRoleTests(TestCase):
    timeout = 120

    async def test_each_role_logs_json_and_stops_on_sigterm(self) -> None:
        """Every role plugin with a health port starts under twistd -n, logs JSON to log/<role>.log, and exits by SIGTERM after a clean stop."""
        roles = [tap[len("postal-"):] for tap in _plugin_files() if tap[len("postal-"):] in HEALTH_GROUP]
        if not roles:
            raise SkipTest("no role plugin with a health port exists yet")
        for role in roles:
            await self._run_role(role)

    async def _run_role(self, role: str) -> None:
        folder = os.path.abspath(self.mktemp())
        config = write_config(folder)
        port = free_port()
        with open(config) as f:
            data = yaml.safe_load(f)
        data.setdefault(HEALTH_GROUP[role], {})["health_port"] = port
        with open(config, "w") as f:
            yaml.safe_dump(data, f)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        protocol = _Twistd()
        env = {k: v for k, v in os.environ.items() if k != "POSTAL_CONFIG_FILE_PATH"}
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            protocol, twistd, [twistd, "-n", "--pidfile=", f"postal-{role}", "--config", config],
            env=env, path=folder)

        def kill() -> object:
            if not protocol.ended.called:
                process.signalProcess("KILL")
            return protocol.ended

        self.addCleanup(kill)
        await wait_healthy(self, port, protocol)
        process.signalProcess("TERM")
        reason = await protocol.ended
        output = protocol.output.decode(errors="replace")
        assert isinstance(reason, ProcessTerminated), output
        self.assertEqual(reason.signal, signal.SIGTERM, output)
        with open(os.path.join(folder, "log", f"{role}.log")) as f:
            messages = [formatEvent(eventFromJSON(line)) for line in f]
        self.assertIn(f"(TCP Port {port} Closed)", messages, role)
        self.assertIn("Received SIGTERM, shutting down.", messages, role)
        self.assertIn("Main loop terminated.", output, role)

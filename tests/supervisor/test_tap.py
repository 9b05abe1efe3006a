# -*- test-case-name: tests.supervisor.test_tap -*-
"""
L{postal.tap.supervisor}: the roles found from the installed plugins, the
checks made before anything starts, and the service tree it builds.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.supervisor.service import supervisor_service
from postal.tap.supervisor import CannotStart, available_roles, prepare


class TapTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="psv")
        self.addCleanup(shutil.rmtree, self.folder, True)

    def _config(self, **processes: int) -> object:
        return default_config(self.folder, processes={"web": 0, "smtp": 0, "worker": 0, "cron": 0,
                                                      "requeuer": 0, "fast": 0, **processes},
                              cron={"health_port": 0}, smtp_server={"health_port": 0, "default_port": 0})

    def test_roles_come_from_the_plugins(self) -> None:
        """The installed postal-<role> plugins are the roles, without the supervisor itself."""
        roles = available_roles()
        self.assertIn("cron", roles)
        self.assertNotIn("supervisor", roles)

    def test_nothing_to_run(self) -> None:
        """With every role at 0 the supervisor refuses to start."""
        error = self.assertRaises(CannotStart, prepare, self._config(), ["cron"])
        self.assertIn("no role to run", str(error))

    def test_taken_port_refuses(self) -> None:
        """A taken health port stops prepare() with the key in the message, before any child exists."""
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        port = holder.getsockname()[1]
        config = default_config(self.folder, processes={"cron": 1}, cron={"health_port": port})
        error = self.assertRaises(CannotStart, prepare, config, ["cron"])
        self.assertEqual(str(error), f"cron.health_port: port {port} on 127.0.0.1 is already in use")

    def test_tree(self) -> None:
        """prepare() makes the run folder; the tree is postal-supervisor holding the control listener and the children."""
        plan, shared, path = prepare(self._config(cron=1), ["cron"])
        self.assertEqual(path, os.path.join(self.folder, "run", "supervisor.sock"))
        self.assertTrue(os.path.isdir(os.path.dirname(path)))
        top = supervisor_service(self._config(cron=1), plan, shared, Clock(), path)
        self.assertEqual(top.name, "postal-supervisor")
        [announce] = list(top)
        self.assertEqual([s.name for s in announce], ["control", "children"])

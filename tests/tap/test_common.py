# -*- test-case-name: tests.tap.test_common -*-
"""What every role's tap module shares: --config, config loading, the base service tree."""

from __future__ import annotations

import io
import os
import sys

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.db.pool import DatabasePool
from postal.logs import LogFileService
from postal.tap.common import RoleOptions, load_config_for, make_role_base, tcp_endpoint_string


class ConfigOptionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.path = os.path.join(self.folder, "postal.yml")
        with open(self.path, "w") as f:
            f.write("version: 2\nsmtp_server:\n  default_port: 2525\n")

    def test_config_option(self) -> None:
        """--config PATH loads that file, and its folder is the config root."""
        options = RoleOptions()
        options.parseOptions(["--config", self.path])
        config = load_config_for(options, environ={})
        self.assertEqual((config.smtp_server.default_port, config.root), (2525, self.folder))

    def test_environment_variable_when_no_option(self) -> None:
        """Without --config, POSTAL_CONFIG_FILE_PATH names the file."""
        options = RoleOptions()
        options.parseOptions([])
        config = load_config_for(options, environ={"POSTAL_CONFIG_FILE_PATH": self.path})
        self.assertEqual(config.source, self.path)

    def test_option_beats_environment(self) -> None:
        """--config wins over POSTAL_CONFIG_FILE_PATH."""
        options = RoleOptions()
        options.parseOptions(["-c", self.path])
        config = load_config_for(options, environ={"POSTAL_CONFIG_FILE_PATH": "/nowhere.yml"})
        self.assertEqual(config.source, self.path)

    def test_unexpected_argument_is_a_usage_error(self) -> None:
        """A stray positional argument is a usage error, as twistd reports it."""
        self.assertRaises(usage.UsageError, RoleOptions().parseOptions, ["extra"])

    def test_bad_config_exits_with_one_line_naming_the_key(self) -> None:
        """A bad value exits with status 1 and one stderr line naming the key and why."""
        with open(self.path, "w") as f:
            f.write("version: 2\nsmtp_server:\n  default_port: 99999\n")
        options = RoleOptions()
        options.parseOptions(["--config", self.path])
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as raised:
            load_config_for(options, environ={})
        self.assertEqual(raised.exception.code, 1)
        self.assertEqual(stderr.getvalue(),
                         "postal: configuration error: smtp_server.default_port: 99999 is not a TCP port (0-65535)\n")

    def test_missing_file_exits_naming_it(self) -> None:
        """A config file that does not exist is named in the error."""
        options = RoleOptions()
        options.parseOptions(["--config", "/nowhere/postal.yml"])
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.assertRaises(SystemExit, load_config_for, options, {})
        self.assertIn("/nowhere/postal.yml: configuration file not found", stderr.getvalue())


class RoleBaseTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.config = default_config(os.path.abspath(self.mktemp()))
        self.reactor = MemoryReactorClock()

    def test_tree_is_logged_pool_then_health(self) -> None:
        """The base is a LogFileService named postal-<role>: the database pool first, then the health listener."""
        base = make_role_base("smtp", self.config, self.reactor, 9091)
        self.assertIsInstance(base.service, LogFileService)
        self.assertEqual(base.service.name, "postal-smtp")
        self.assertEqual([child.name for child in base.service], ["database", "health"])
        self.assertIs(base.service.getServiceNamed("database"), base.pool)
        self.assertIsInstance(base.pool, DatabasePool)
        self.assertEqual(str(base.pool.engine.url), self.config.database_url)

    def test_health_listens_on_loopback_port(self) -> None:
        """The health listener is the given port on 127.0.0.1 and binds when the tree starts."""
        base = make_role_base("worker", self.config, self.reactor, 9090)
        health = base.service.getServiceNamed("health")
        assert isinstance(health, StreamServerEndpointService)
        health.privilegedStartService()
        self.addCleanup(health.stopService)
        [(port, _factory, _backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (9090, "127.0.0.1"))

    def test_no_health_port_no_listener(self) -> None:
        """Health port 0 (or None) means no health listener."""
        base = make_role_base("cron", self.config, self.reactor, 0)
        self.assertEqual([child.name for child in base.service], ["database"])

    def test_without_log_file(self) -> None:
        """log_to_file=False (postal.tac) gives a MultiService without a log file: the tac installs the observer."""
        base = make_role_base("allinone", self.config, self.reactor, None, log_to_file=False)
        self.assertIsInstance(base.service, MultiService)
        self.assertNotIsInstance(base.service, LogFileService)

    def test_pool_stops_after_every_other_child(self) -> None:
        """
        The database pool stops only once every other child has finished
        stopping, so a child can still commit in its stopService (release a
        lease, record in-flight work).
        """
        for log_to_file in (True, False):
            base = make_role_base("cron", self.config, self.reactor, 0, log_to_file=log_to_file)
            pool_stops: list[str] = []
            base.pool.stopService = lambda: pool_stops.append("pool") or succeed(None)  # type: ignore[method-assign]
            late = Deferred[None]()
            child = _SlowToStop(late)
            child.setServiceParent(base.service)
            stopped = base.service.stopService()
            self.assertEqual(pool_stops, [])
            self.assertNoResult(stopped)
            late.callback(None)
            self.assertEqual(pool_stops, ["pool"])
            self.successResultOf(stopped)


class _SlowToStop(Service):
    """A child whose stop finishes only when the test says so."""

    def __init__(self, done: Deferred[None]) -> None:
        self._done = done

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._done


class EndpointStringTests(SynchronousTestCase):
    def test_ipv4(self) -> None:
        """An IPv4 interface goes in as written."""
        self.assertEqual(tcp_endpoint_string(25, "0.0.0.0"), "tcp:25:interface=0.0.0.0")

    def test_ipv6_colons_escaped(self) -> None:
        """IPv6 colons are escaped so serverFromString reads the address whole."""
        from twisted.internet.endpoints import serverFromString

        description = tcp_endpoint_string(25, "::")
        self.assertEqual(description, r"tcp:25:interface=\:\:")
        endpoint = serverFromString(MemoryReactorClock(), description)
        self.assertEqual((endpoint._port, endpoint._interface), (25, "::"))  # type: ignore[attr-defined]

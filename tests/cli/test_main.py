# -*- test-case-name: tests.cli.test_main -*-
"""
What every C{postal} verb shares: finding the configuration, C{--json},
usage errors (exit 2) and other errors (exit 1), each one line on stderr.
"""

from __future__ import annotations

import os

from postal._version import __version__
from tests.cli.helpers import CLITestCase


class UsageTests(CLITestCase):
    """Bad command lines are usage errors: one line, exit status 2."""

    def test_no_command(self) -> None:
        """C{postal} alone names the missing command."""
        line = self.fails(2, config=False)
        self.assertEqual(line, "postal: error: the following arguments are required: COMMAND (see postal --help)")

    def test_unknown_command(self) -> None:
        """An unknown verb is a usage error naming it."""
        self.assertIn("invalid choice: 'frobnicate'", self.fails(2, "frobnicate", config=False))

    def test_missing_argument(self) -> None:
        """A verb without its arguments names what is missing."""
        self.assertIn("ORG/SERVER", self.fails(2, "domain", "add"))

    def test_group_without_action(self) -> None:
        """C{postal org} without an action is a usage error."""
        self.assertIn("ACTION", self.fails(2, "org", config=False))

    def test_help(self) -> None:
        """C{--help} lists the verbs on stdout and exits 0."""
        result = self.cli("--help", config=False)
        self.assertEqual(result.code, 0)
        for verb in ("initialize", "upgrade", "make-user", "org", "server", "domain", "credential",
                     "webhook", "default-dkim-record", "version"):
            self.assertIn(verb, result.out)


class ConfigurationTests(CLITestCase):
    """How the configuration is found and how its errors read."""

    def test_version_needs_no_configuration(self) -> None:
        """C{postal version} works without a configuration file."""
        result = self.cli("version", config=False, environ={"POSTAL_CONFIG_FILE_PATH": "/nonexistent.yml"})
        self.assertEqual((result.code, result.out), (0, __version__ + "\n"))
        self.assertEqual(self.ok("version"), {"version": __version__})

    def test_missing_file(self) -> None:
        """A missing configuration file is an error naming the path."""
        line = self.fails(1, "initialize", "--config", "/nonexistent/postal.yml", config=False)
        self.assertEqual(line, "postal: configuration error: /nonexistent/postal.yml: configuration file not found")

    def test_bad_key(self) -> None:
        """An unknown key is an error naming the key."""
        self.write_config({"smtp_server": {"defualt_port": 25}})
        self.assertEqual(self.fails(1, "initialize"),
                         "postal: configuration error: smtp_server.defualt_port: unknown key")

    def test_bad_value(self) -> None:
        """A bad value is an error naming the key."""
        self.write_config({"dns": {"timeout": "soon"}})
        self.assertIn("dns.timeout", self.fails(1, "initialize"))

    def test_environment_variable(self) -> None:
        """Without --config, C{POSTAL_CONFIG_FILE_PATH} names the file."""
        result = self.cli("initialize", "--json", config=False,
                          environ={"POSTAL_CONFIG_FILE_PATH": self.config_path})
        self.assertEqual(result.code, 0, result)
        self.assertTrue(os.path.exists(os.path.join(self.folder, "postal.sqlite")))

    def test_environment_overrides(self) -> None:
        """Environment overrides apply, and a bad one names its key."""
        line = self.fails(1, "initialize", environ={"DATABASE_URL": "mysql://x/y"})
        self.assertIn("database.url", line)

    def test_default_path(self) -> None:
        """Without --config or the variable, ./postal.yml is read."""
        cwd = os.getcwd()
        os.chdir(self.folder)
        self.addCleanup(os.chdir, cwd)
        self.assertEqual(self.cli("initialize", config=False).code, 0)

    def test_options_before_verb(self) -> None:
        """C{--config} and C{--json} may come before the verb too."""
        result = self.cli("--json", "--config", self.config_path, "initialize", config=False)
        self.assertEqual(result.code, 0, result)
        self.assertEqual(result.json()["migrated_to"], "0001")


class ErrorTests(CLITestCase):
    """Errors from the stores and the database are one line, exit status 1, no traceback."""

    def test_not_initialized(self) -> None:
        """Using a database that was never initialized says to run postal initialize."""
        line = self.fails(1, "org", "create", "Acme")
        self.assertTrue(line.startswith("postal: database error: "), line)
        self.assertTrue(line.endswith("run postal initialize"), line)

    def test_store_error(self) -> None:
        """A store's NotFound reads as its message."""
        self.initialize()
        self.assertEqual(self.fails(1, "server", "create", "nope", "Mail"),
                         "postal: no organization with permalink 'nope'")

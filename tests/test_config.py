# -*- test-case-name: tests.test_config -*-
"""The configuration tree: YAML, environment overrides, paths and errors that name the key."""

from __future__ import annotations

import os

import attrs
from twisted.trial.unittest import SynchronousTestCase

from postal.config import ConfigError, PostalConfig, config_path_from, default_config, load_config

FULL = """\
version: 2
postal:
  web_hostname: postal.test
  smtp_hostname: mx.postal.test
  use_ip_pools: true
  smtp_relays:
    - smtp://relay.test:587?ssl_mode=STARTTLS
  signing_key_path: keys/signing.key
database:
  url: postgresql://postal:secret@db.test:5432/postal
web_server:
  default_port: 5000
smtp_server:
  default_port: 2525
  max_message_size: 20
  tls_enabled: yes
  tls_certificate_path: $config-file-root/tls/smtp.cert
  tls_private_key_path: /etc/ssl/smtp.key
dns:
  nameservers: ["127.0.0.1:5353"]
  timeout: 2.5
logging:
  directory: /var/log/postal
main_db:
  host: ignored-postal-v3-group
"""


class _ConfigCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.path = os.path.join(self.root, "postal.yml")

    def load(self, text: str, environ: dict[str, str] | None = None) -> PostalConfig:
        with open(self.path, "w") as f:
            f.write(text)
        return load_config(self.path, environ or {})

    def error(self, text: str, environ: dict[str, str] | None = None) -> str:
        with self.assertRaises(ConfigError) as raised:
            self.load(text, environ)
        return str(raised.exception)


class ValidFileTests(_ConfigCase):
    def test_full_file(self) -> None:
        """Every group reads as typed values; Postal groups we do not use are accepted and ignored."""
        config = self.load(FULL)
        self.assertEqual(config.postal.web_hostname, "postal.test")
        self.assertIs(config.postal.use_ip_pools, True)
        self.assertEqual(config.postal.smtp_relays, ("smtp://relay.test:587?ssl_mode=STARTTLS",))
        self.assertEqual(config.smtp_server.default_port, 2525)
        self.assertIs(config.smtp_server.tls_enabled, True)
        self.assertEqual(config.max_message_size_bytes, 20 * 1024 * 1024)
        self.assertEqual(config.dns.nameservers, ("127.0.0.1:5353",))
        self.assertEqual(config.dns.timeout, 2.5)
        self.assertEqual(config.source, self.path)

    def test_log_level_must_be_a_level_name(self) -> None:
        with self.assertRaises(ConfigError) as raised:
            self.load("version: 2\nlogging:\n  level: verbose\n")
        self.assertIn("logging.level", str(raised.exception))
        self.assertEqual(self.load("version: 2\nlogging:\n  level: debug\n").logging.level, "debug")

    def test_defaults(self) -> None:
        """An empty file is Postal's defaults plus ours (interfaces.md)."""
        config = self.load("")
        self.assertEqual((config.web_server.default_bind_address, config.web_server.default_port), ("127.0.0.1", 5000))
        self.assertEqual((config.smtp_server.default_bind_address, config.smtp_server.default_port), ("::", 25))
        self.assertEqual(config.smtp_server.max_message_size, 14)
        self.assertEqual(
            (config.worker.health_port, config.smtp_server.health_port, config.cron.health_port,
             config.requeuer.health_port, config.fast.health_port),
            (9090, 9091, 9092, 9093, 9094))
        self.assertEqual((config.fast.http_port, config.fast.https_port, config.fast.bind_address), (80, 443, "::"))
        self.assertEqual(config.postal.smtp_relays, ())
        self.assertEqual(config.dns.nameservers, ())
        self.assertEqual(config.database_url, f"sqlite:///{self.root}/postal.sqlite")

    def test_tree_is_frozen(self) -> None:
        """The tree cannot be changed after loading."""
        config = self.load("")
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, config.smtp_server, "default_port", 1)

    def test_postal_health_port_name_is_accepted(self) -> None:
        """Postal's own key, default_health_server_port, sets health_port."""
        config = self.load("worker:\n  default_health_server_port: 9999\n")
        self.assertEqual(config.worker.health_port, 9999)


class PathTests(_ConfigCase):
    def test_relative_paths_are_relative_to_config_folder(self) -> None:
        """Relative paths and $config-file-root resolve against the config file's folder; absolute ones stay."""
        config = self.load(FULL)
        self.assertEqual(config.postal.signing_key_path, os.path.join(self.root, "keys", "signing.key"))
        self.assertEqual(config.smtp_server.tls_certificate_path, os.path.join(self.root, "tls", "smtp.cert"))
        self.assertEqual(config.smtp_server.tls_private_key_path, "/etc/ssl/smtp.key")
        self.assertEqual(config.logging.directory, "/var/log/postal")

    def test_default_paths_beside_config(self) -> None:
        """Default files (signing key, log folder, SQLite) live beside the config file."""
        config = self.load("")
        self.assertEqual(config.postal.signing_key_path, os.path.join(self.root, "signing.key"))
        self.assertEqual(config.logging.directory, os.path.join(self.root, "log"))

    def test_relative_sqlite_url(self) -> None:
        """A relative SQLite path in database.url is relative to the config folder too."""
        config = self.load("database:\n  url: sqlite:///data/postal.sqlite\n")
        self.assertEqual(config.database_url, f"sqlite:///{self.root}/data/postal.sqlite")

    def test_relative_path_from_environment(self) -> None:
        """A relative path given in the environment also resolves against the config folder."""
        config = self.load("", {"LOGGING_DIRECTORY": "logs"})
        self.assertEqual(config.logging.directory, os.path.join(self.root, "logs"))

    def test_config_path_precedence(self) -> None:
        """--config, else POSTAL_CONFIG_FILE_PATH, else ./postal.yml."""
        env = {"POSTAL_CONFIG_FILE_PATH": "/etc/postal/postal.yml"}
        self.assertEqual(config_path_from("/x.yml", env), "/x.yml")
        self.assertEqual(config_path_from(None, env), "/etc/postal/postal.yml")
        self.assertEqual(config_path_from(None, {}), "postal.yml")


class EnvironmentTests(_ConfigCase):
    def test_integer_override(self) -> None:
        """GROUP_KEY in upper case overrides the file."""
        config = self.load("smtp_server:\n  default_port: 25\n", {"SMTP_SERVER_DEFAULT_PORT": "2525"})
        self.assertEqual(config.smtp_server.default_port, 2525)

    def test_boolean_overrides(self) -> None:
        """Booleans read true/1/yes/on and false/0/no/off, any case."""
        for text, expected in [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("Off", False)]:
            config = self.load("smtp_server:\n  tls_enabled: true\n" if not expected else "",
                               {"SMTP_SERVER_TLS_ENABLED": text})
            self.assertIs(config.smtp_server.tls_enabled, expected, text)

    def test_comma_list_overrides(self) -> None:
        """Lists are comma-separated in the environment, blanks dropped."""
        config = self.load(FULL, {
            "POSTAL_SMTP_RELAYS": "smtp://a.test:25, smtp://b.test:2525?ssl_mode=TLS,",
            "DNS_NAMESERVERS": "127.0.0.1:53",
        })
        self.assertEqual(config.postal.smtp_relays, ("smtp://a.test:25", "smtp://b.test:2525?ssl_mode=TLS"))
        self.assertEqual(config.dns.nameservers, ("127.0.0.1:53",))

    def test_empty_list_override(self) -> None:
        """An empty variable empties a list set in the file."""
        config = self.load(FULL, {"POSTAL_SMTP_RELAYS": ""})
        self.assertEqual(config.postal.smtp_relays, ())

    def test_database_url_override(self) -> None:
        """DATABASE_URL overrides database.url."""
        config = self.load(FULL, {"DATABASE_URL": "sqlite:////tmp/other.sqlite"})
        self.assertEqual(config.database_url, "sqlite:////tmp/other.sqlite")

    def test_bad_environment_value_names_the_key(self) -> None:
        """A bad value from the environment fails like one from the file, naming the key."""
        self.assertEqual(self.error("", {"WORKER_HEALTH_PORT": "ninety"}),
                         "worker.health_port: expected an integer, got 'ninety'")
        self.assertEqual(self.error("", {"SMTP_SERVER_TLS_ENABLED": "maybe"}),
                         "smtp_server.tls_enabled: expected true or false, got 'maybe'")

    def test_unrelated_variables_ignored(self) -> None:
        """Variables that name no key (PATH, POSTAL_CONFIG_FILE_PATH) change nothing."""
        config = self.load("", {"PATH": "/bin", "POSTAL_CONFIG_FILE_PATH": "/x", "SMTP_SERVER_NOPE": "1"})
        self.assertEqual(config, self.load(""))


class InvalidFileTests(_ConfigCase):
    def test_missing_file(self) -> None:
        """A missing file is named."""
        self.assertRaises(ConfigError, load_config, os.path.join(self.root, "none.yml"), {})

    def test_not_yaml(self) -> None:
        """Text that is not YAML is reported with the file's path."""
        self.assertIn("not valid YAML", self.error("postal: [unclosed\n"))

    def test_not_a_mapping(self) -> None:
        """A YAML list at the top, or as a group, is refused."""
        self.assertIn("expected a mapping of configuration groups", self.error("- a\n- b\n"))
        self.assertEqual(self.error("smtp_server: [1, 2]\n"), "smtp_server: expected a mapping of keys, got list")

    def test_unknown_group_and_key(self) -> None:
        """Unknown groups and keys are errors naming them (a typo never passes silently)."""
        self.assertEqual(self.error("smtp_servr:\n  default_port: 25\n"), "smtp_servr: unknown configuration group")
        self.assertEqual(self.error("smtp_server:\n  default_prot: 25\n"), "smtp_server.default_prot: unknown key")

    def test_bad_types(self) -> None:
        """Wrong types name the key and what was expected."""
        self.assertEqual(self.error("smtp_server:\n  default_port: twenty\n"),
                         "smtp_server.default_port: expected an integer, got 'twenty'")
        self.assertEqual(self.error("smtp_server:\n  default_port: 25.5\n"),
                         "smtp_server.default_port: expected an integer, got 25.5")
        self.assertEqual(self.error("smtp_server:\n  tls_enabled: sometimes\n"),
                         "smtp_server.tls_enabled: expected true or false, got 'sometimes'")
        self.assertEqual(self.error("smtp_server:\n  max_message_size: true\n"),
                         "smtp_server.max_message_size: expected a number, got True")
        self.assertEqual(self.error("postal:\n  smtp_relays: {a: 1}\n"),
                         "postal.smtp_relays: expected a list, got dict")
        self.assertEqual(self.error("postal:\n  web_hostname: [a]\n"),
                         "postal.web_hostname: expected a string, got list")
        self.assertEqual(self.error("dns:\n  timeout: soon\n"), "dns.timeout: expected a number, got 'soon'")

    def test_negative_and_zero_sizes(self) -> None:
        """Negative numbers and sizes below 1 are refused, naming the key."""
        self.assertEqual(self.error("worker:\n  concurrency: -1\n"), "worker.concurrency: must not be negative, got -1")
        self.assertEqual(self.error("smtp_server:\n  max_message_size: 0\n"),
                         "smtp_server.max_message_size: must be at least 1, got 0")

    def test_ports_out_of_range(self) -> None:
        """Any *port key above 65535 is refused, naming that key."""
        for key in ["web_server.default_port", "web_server.tls_port", "smtp_server.default_port",
                    "smtp_server.tls_port", "smtp_server.health_port", "worker.health_port",
                    "cron.health_port", "requeuer.health_port", "fast.health_port", "fast.http_port",
                    "fast.https_port", "smtp.port", "rspamd.port"]:
            group, name = key.split(".")
            self.assertEqual(self.error(f"{group}:\n  {name}: 65536\n"),
                             f"{key}: 65536 is not a TCP port (0-65535)")

    def test_bad_database_url(self) -> None:
        """database.url must parse and name SQLite or PostgreSQL."""
        self.assertEqual(self.error("database:\n  url: mysql://u@h/db\n"),
                         "database.url: unsupported database 'mysql' (use sqlite or postgresql)")
        self.assertIn("database.url: 'not a url' is not a database URL", self.error("database:\n  url: not a url\n"))

    def test_postgresql_url_gets_our_driver(self) -> None:
        """postgres:// and postgresql:// URLs use psycopg 3, the driver we ship."""
        for scheme in ("postgres", "postgresql", "postgresql+psycopg"):
            config = self.load(f"database:\n  url: {scheme}://u:p@db.test:5432/postal\n")
            self.assertEqual(config.database_url, "postgresql+psycopg://u:p@db.test:5432/postal")

    def test_other_checks(self) -> None:
        """Relays, nameservers, web protocol and the file version are checked, naming the key."""
        self.assertIn("postal.smtp_relays: 'relay.test'", self.error("postal:\n  smtp_relays: [relay.test]\n"))
        self.assertIn("dns.nameservers: '127.0.0.1'", self.error("dns:\n  nameservers: ['127.0.0.1']\n"))
        self.assertEqual(self.error("postal:\n  web_protocol: gopher\n"), "postal.web_protocol: must be http or https")
        self.assertIn("version: only version 2", self.error("version: 1\n"))


class DefaultConfigTests(SynchronousTestCase):
    def test_groups_in_memory(self) -> None:
        """default_config builds the same tree from in-memory groups, without reading the environment."""
        config = default_config("/srv/postal", smtp_server={"default_port": 2525})
        self.assertEqual((config.root, config.smtp_server.default_port), ("/srv/postal", 2525))
        self.assertIsNone(config.source)


class DocumentationTests(SynchronousTestCase):
    def test_configuration_doc_lists_every_key(self) -> None:
        """docs/configuration.md is what scripts/config_docs.py prints: every key, its default and variable."""
        import runpy

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        generate = runpy.run_path(os.path.join(root, "scripts", "config_docs.py"))["table"]
        with open(os.path.join(root, "docs", "configuration.md"), encoding="utf-8") as f:
            committed = f.read()
        self.assertEqual(committed, generate(),
                         "regenerate: python scripts/config_docs.py > docs/configuration.md")
        self.assertIn("| `smtp_server.default_port` | int | `25` | `SMTP_SERVER_DEFAULT_PORT` |", committed)

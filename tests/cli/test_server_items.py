# -*- test-case-name: tests.cli.test_server_items -*-
"""C{postal credential create} and C{postal webhook create}."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, select

from postal.db import schema
from tests.cli.helpers import CLITestCase

SERVER = "acme/mail"


class CredentialTests(CLITestCase):
    """C{postal credential create}."""

    def setUp(self) -> None:
        super().setUp()
        self.make_server()

    def test_random_key(self) -> None:
        """SMTP and API credentials get a random 24-character key, printed once."""
        data = self.ok("credential", "create", SERVER, "--type", "API", "--name", "app")
        self.assertEqual(sorted(data), ["key", "type", "uuid"])
        self.assertEqual(data["type"], "API")
        self.assertRegex(data["key"], r"^[A-Za-z0-9]{24}$")
        out = self.cli("credential", "create", SERVER, "--type", "SMTP").out
        self.assertRegex(out, r"^Created SMTP credential for acme/mail \(uuid [0-9a-f-]{36}\)\.\nKey: [A-Za-z0-9]{24}\n$")

    def test_given_key_and_hold(self) -> None:
        """A given key is used as is; --hold is accepted."""
        data = self.ok("credential", "create", SERVER, "--type", "SMTP", "--key", "my-own-key-123", "--hold")
        self.assertEqual(data["key"], "my-own-key-123")
        engine = create_engine("sqlite:///" + os.path.join(self.folder, "postal.sqlite"))
        self.addCleanup(engine.dispose)
        with engine.connect() as conn:
            row = conn.execute(select(schema.credentials)).one()
        self.assertEqual((row.type, row.hold), ("SMTP", True))
        self.assertIn("already in use",
                      self.fails(1, "credential", "create", SERVER, "--type", "API", "--key", "my-own-key-123"))

    def test_smtp_ip(self) -> None:
        """An SMTP-IP credential needs an address or network as its key."""
        self.assertEqual(self.ok("credential", "create", SERVER, "--type", "SMTP-IP", "--key", "192.0.2.0/24")["key"],
                         "192.0.2.0/24")
        self.assertEqual(self.fails(1, "credential", "create", SERVER, "--type", "SMTP-IP"),
                         "postal: an SMTP-IP credential needs --key with an address or network")
        self.assertIn("must be an IPv4 or IPv6 address",
                      self.fails(1, "credential", "create", SERVER, "--type", "SMTP-IP", "--key", "nowhere"))

    def test_bad_type(self) -> None:
        """A type other than API, SMTP or SMTP-IP is a usage error listing the choices."""
        line = self.fails(2, "credential", "create", SERVER, "--type", "IMAP")
        self.assertIn("invalid choice: 'IMAP' (choose from 'API', 'SMTP', 'SMTP-IP')", line)
        self.assertIn("--type", self.fails(2, "credential", "create", SERVER))

    def test_unknown_server(self) -> None:
        """An unknown server is named."""
        self.assertEqual(self.fails(1, "credential", "create", "acme/other", "--type", "API"),
                         "postal: no server acme/other")


class WebhookTests(CLITestCase):
    """C{postal webhook create}."""

    def setUp(self) -> None:
        super().setUp()
        self.make_server()

    def test_all_events(self) -> None:
        """A webhook for all events."""
        data = self.ok("webhook", "create", SERVER, "https://hooks.example.com/postal", "--all-events")
        self.assertEqual(list(data), ["uuid"])

    def test_some_events(self) -> None:
        """A webhook for chosen events names them."""
        out = self.cli("webhook", "create", SERVER, "http://hooks.example.com/", "--event", "MessageSent",
                       "--event", "MessageBounced", "--name", "ops").out
        self.assertIn("MessageSent, MessageBounced to http://hooks.example.com/.", out)

    def test_bad_url(self) -> None:
        """A URL that is not http(s) is refused."""
        self.assertEqual(self.fails(1, "webhook", "create", SERVER, "ftp://x.example", "--all-events"),
                         "postal: webhook URL 'ftp://x.example' must start with http:// or https://")

    def test_bad_event(self) -> None:
        """An unknown event is refused, listing the known ones."""
        line = self.fails(1, "webhook", "create", SERVER, "https://x.example", "--event", "MessageEaten")
        self.assertTrue(line.startswith("postal: unknown webhook event 'MessageEaten' (one of MessageSent, "), line)

    def test_events_required(self) -> None:
        """Either --all-events or --event is required, not both."""
        self.assertIn("one of the arguments --all-events --event is required",
                      self.fails(2, "webhook", "create", SERVER, "https://x.example"))
        self.assertIn("not allowed with argument",
                      self.fails(2, "webhook", "create", SERVER, "https://x.example", "--all-events",
                                 "--event", "MessageSent"))

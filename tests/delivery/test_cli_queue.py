# -*- test-case-name: tests.delivery.test_cli_queue -*-
"""
Tests for L{postal.cli.queue}: the C{postal queue} verbs, run against a
migrated SQLite database through their own parser, and through
L{postal.cli.main} as an operator runs them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.cli import queue
from postal.cli._context import CommandContext, Runtime
from postal.config import default_config
from postal.db.migrate import upgrade
from postal.db.pool import SynchronousDatabasePool, make_engine
from postal.errors import InvalidInput
from postal.testing import FakeResolver
from tests.cli.helpers import CLITestCase
from tests.delivery.helpers import make_account, queue_messages


class QueueCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.url = f"sqlite:///{folder}/postal.sqlite"
        engine = make_engine(self.url)
        upgrade(engine)
        self.addCleanup(engine.dispose)
        self.pool = SynchronousDatabasePool(engine)
        self.account = make_account(self.pool)
        self.stored = queue_messages(self.pool, self.account, ["a@one.test", "b@two.test", "c@two.test"])
        self.config = default_config(folder, database={"url": self.url})
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--json", action="store_true")
        self.parser = argparse.ArgumentParser()
        queue.register(self.parser.add_subparsers(dest="command"), common)

    def run_verb(self, *argv: str) -> Any:
        args = self.parser.parse_args(["queue", *argv, "--json"])
        out = io.StringIO()
        runtime = Runtime(clock=Clock(), resolver_for=lambda c: FakeResolver(), wait=lambda start: None)
        ctx = CommandContext(args, self.config, runtime, out)
        try:
            args.handler(ctx)
        finally:
            ctx.close()
        return json.loads(out.getvalue())

    def test_list_retry_remove(self) -> None:
        """list shows queued messages; retry and remove act on a domain or on ids."""
        listed = self.run_verb("list", "acme/mail")
        self.assertEqual([m["domain"] for m in listed["messages"]], ["one.test", "two.test", "two.test"])
        self.assertEqual(self.run_verb("retry", "acme/mail", "--domain", "two.test"), {"retried": 2})
        self.assertEqual(self.run_verb("remove", "acme/mail", "--id", str(self.stored[0].id)), {"removed": 1})
        self.assertEqual(len(self.run_verb("list", "acme/mail")["messages"]), 2)

    def test_bulk_verbs_need_a_selection(self) -> None:
        """retry, remove, release and cancel-hold refuse to run without --id, --domain or --all."""
        self.assertRaises(InvalidInput, self.run_verb, "remove", "acme/mail")

    def test_release_and_cancel_hold_act_on_held_messages(self) -> None:
        """release and cancel-hold count only held messages."""
        self.assertEqual(self.run_verb("release", "acme/mail", "--all"), {"released": 0})
        self.assertEqual(self.run_verb("cancel-hold", "acme/mail", "--all"), {"cancelled": 0})


class MainQueueTests(CLITestCase):
    """C{postal queue ...} through the real entry point, on the installation's SQLite database."""

    def setUp(self) -> None:
        super().setUp()
        self.initialize()
        engine = make_engine("sqlite:///" + os.path.join(self.folder, "postal.sqlite"))
        self.addCleanup(engine.dispose)
        pool = SynchronousDatabasePool(engine)
        self.stored = queue_messages(pool, make_account(pool), ["a@one.test", "b@two.test"])

    def test_list_in_text_and_json(self) -> None:
        """postal queue list ORG/SERVER names each queued message with its domain and state."""
        result = self.cli("queue", "list", "acme/mail")
        self.assertEqual((result.code, result.err), (0, ""), result)
        lines = result.out.splitlines()
        self.assertEqual(lines[0], "2 queued message(s) on acme/mail")
        self.assertEqual([line.split()[:3] for line in lines[1:]],
                         [[str(self.stored[0].id), "one.test", "attempts=0"],
                          [str(self.stored[1].id), "two.test", "attempts=0"]])
        self.assertTrue(all(line.endswith("ready") for line in lines[1:]))
        self.assertEqual([m["message_id"] for m in self.ok("queue", "list", "acme/mail")["messages"]],
                         [m.id for m in self.stored])

    def test_remove_then_list(self) -> None:
        """postal queue remove --domain deletes that domain's rows and list no longer shows them."""
        self.assertEqual(self.ok("queue", "remove", "acme/mail", "--domain", "two.test"), {"removed": 1})
        self.assertEqual([m["domain"] for m in self.ok("queue", "list", "acme/mail")["messages"]], ["one.test"])

    def test_unknown_server_is_one_line(self) -> None:
        """An unknown server is reported on one line with exit status 1."""
        self.assertIn("acme/nope", self.fails(1, "queue", "list", "acme/nope"))

# -*- test-case-name: tests.cron.test_cli -*-
"""C{postal cron list} and C{postal cron run TASK}, in-process with a fake clock and resolver."""

from __future__ import annotations

import os

from sqlalchemy import insert, select, update

from postal.cron.service import TASK_NAMES
from postal.db import messages, schema as s
from postal.db.leases import acquire_or_renew_txn
from postal.db.pool import SynchronousDatabasePool, make_engine
from postal.db.servers import find_server_txn
from tests.cli.helpers import CLITestCase

# The helpers' clock: 2023-11-14 22:13:20 UTC.
START = 1_700_000_000.0


class CronCommandTests(CLITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.make_server()
        engine = make_engine("sqlite:///" + os.path.join(self.folder, "postal.sqlite"))
        self.addCleanup(engine.dispose)
        self.pool = SynchronousDatabasePool(engine)
        self.server = self.pool.call("find", find_server_txn, "acme/mail")

    def hold_expired_message(self) -> int:
        transaction = messages.NewTransaction(self.server.id, b"Subject: x\r\n\r\nx\r\n", [
            messages.NewMessage("outgoing", "a@x.test", "b@y.test", self.server.id)])
        [stored] = self.pool.call("store", messages.store_transaction_txn, START - 8 * 86400, transaction)
        with self.pool.engine.begin() as conn:
            conn.execute(update(s.messages).values(status="Held", held=True, hold_expiry=START - 60))
        return stored.id

    def test_list_fresh(self) -> None:
        """On a new installation every task is listed, never run, with its next slot."""
        tasks = {t["name"]: t for t in self.ok("cron", "list")["tasks"]}
        self.assertEqual(sorted(tasks), sorted(TASK_NAMES))
        self.assertEqual(tasks["send_notifications"]["next_run_after"], START + 40)  # 22:14:00
        self.assertEqual(tasks["prune_webhook_requests"]["next_run_after"], START + 31 * 60 + 40)  # 22:45
        self.assertEqual(tasks["process_message_retention"]["schedule"], "daily at 03:00 UTC")
        self.assertEqual({t["last_run_at"] for t in tasks.values()}, {None})

    def test_run_then_list(self) -> None:
        """C{cron run} does the task now and records it; the schedule is unchanged."""
        message_id = self.hold_expired_message()
        result = self.ok("cron", "run", "expire_held_messages")
        self.assertEqual(result, {"task": "expire_held_messages", "status": "ok",
                                  "summary": "cancelled 1 expired holds"})
        with self.pool.engine.connect() as conn:
            status = conn.execute(select(s.messages.c.status).where(s.messages.c.id == message_id)).scalar_one()
        self.assertEqual(status, "HoldCancelled")
        task = {t["name"]: t for t in self.ok("cron", "list")["tasks"]}["expire_held_messages"]
        self.assertEqual((task["last_run_at"], task["last_status"], task["next_run_after"]),
                         (START, "ok", START + 60 + 40))  # 22:15:00

    def test_list_names_lease_holder(self) -> None:
        """The listing names the process holding an unexpired cron lease, and nobody otherwise."""
        self.assertIsNone(self.ok("cron", "list")["lease"])
        self.pool.call("lease", acquire_or_renew_txn, "cron", "host:a pid:1 x", START, 40.0)
        self.assertEqual(self.ok("cron", "list")["lease"], {"holder": "host:a pid:1 x", "expires_at": START + 40})
        self.assertIn("Active cron process: host:a pid:1 x", self.cli("cron", "list").out)
        self.clock.advance(41)
        self.assertIsNone(self.ok("cron", "list")["lease"])

    def test_list_text(self) -> None:
        """Without --json each task is one line with its schedule, last and next run."""
        self.ok("cron", "run", "send_notifications")
        result = self.cli("cron", "list")
        self.assertEqual(result.code, 0)
        line = [x for x in result.out.splitlines() if x.startswith("send_notifications")][0]
        self.assertEqual(line.split()[1:], ["every", "minute", "2023-11-14", "22:13:20", "UTC", "ok",
                                            "2023-11-14", "22:14:00", "UTC"])

    def test_failed_run(self) -> None:
        """A task that fails exits 1 with one line saying why, and is recorded as an error."""
        with self.pool.engine.begin() as conn:
            conn.execute(insert(s.domains).values(
                uuid="d1", organization_id=self.server.organization_id, server_id=self.server.id,
                name="flaky.test", verification_method="DNS", verification_token="t", verified_at=1.0,
                dkim_private_key="k", dkim_identifier_string="abcdef", use_for_any=False,
                dns_checked_at=1.0, created_at=1.0, updated_at=1.0))
        self.zone.fail("flaky.test")
        line = self.fails(1, "cron", "run", "check_all_dns")
        self.assertEqual(line, "postal: task check_all_dns failed: TaskIncomplete: "
                               "checked 0 domains, 0 with DNS errors; checked 0 track domains; 1 checks failed")
        task = {t["name"]: t for t in self.ok("cron", "list")["tasks"]}["check_all_dns"]
        self.assertEqual(task["last_status"], "error")
        self.flushLoggedErrors()

    def test_unknown_task(self) -> None:
        """An unknown task name is a usage error."""
        result = self.cli("cron", "run", "make_coffee")
        self.assertEqual(result.code, 2)
        self.assertIn("invalid choice", result.err)

# -*- test-case-name: tests.db.test_deliveries -*-
"""
Tests for L{postal.db.deliveries} and L{postal.db.suppressions} on SQLite
and PostgreSQL: claiming work with what the pipeline needs, and recording
an outcome's rows together.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from postal.db import schema as s
from postal.db.deliveries import DeliveryRecord, claim_work_txn, record_deliveries_txn
from postal.db.messages import deliveries_for_message_txn, get_message_txn
from postal.db.pool import SynchronousDatabasePool
from postal.db.stats import increment_live_stats_txn, live_total_txn
from postal.db.suppressions import (
    add_suppression_txn, get_suppression_txn, prune_suppressions_txn, remove_suppression_txn,
)
from postal.db.webhooks import create_webhook_txn
from tests.dbhelpers import both_databases
from tests.delivery.helpers import make_account, queue_messages

NOW = 1_700_000_000.0


class _DeliveriesMixin:
    make_engine: Any
    assertEqual: Any
    assertTrue: Any
    assertFalse: Any
    assertIsNone: Any

    def setUp(self) -> None:
        self.pool = SynchronousDatabasePool(self.make_engine())
        self.account = make_account(self.pool)
        self.server_id = self.account.server.id

    def test_claim_work_loads_the_pipeline_inputs(self) -> None:
        """A claimed work item carries its message, server, domain, raw message and suppression."""
        [stored] = queue_messages(self.pool, self.account, ["a@dest.test"])
        self.pool.call("sup", add_suppression_txn, NOW, self.server_id, "A@dest.test", "too many soft fails", 30)
        item: Any
        [item] = self.pool.call("claim", claim_work_txn, NOW, "w", 60.0, 10, (), "outgoing-")
        self.assertEqual(item.message.id, stored.id)
        self.assertEqual(item.server.id, self.server_id)
        self.assertEqual(item.domain.name, "example.com")
        self.assertTrue(item.raw.startswith(b"From: "))
        self.assertEqual(item.suppression.reason, "too many soft fails")
        self.assertEqual(self.pool.call("claim", claim_work_txn, NOW, "w", 60.0, 10, (), "incoming-"), [])

    def test_record_writes_every_row_of_an_outcome(self) -> None:
        """Recording an outcome writes the delivery, message status, queue update, stats and webhook rows."""
        self.pool.call("hook", create_webhook_txn, NOW, self.server_id, "https://h.test/", None, False,
                       ["MessageHeld"])
        [stored] = queue_messages(self.pool, self.account, ["a@dest.test"])
        item: Any
        [item] = self.pool.call("claim", claim_work_txn, NOW, "w", 60.0, 10)
        record = DeliveryRecord(queue_id=item.queued.id, message_id=stored.id, server_id=self.server_id,
                                status="Held", details="Server is in development mode.", holder="w",
                                prepended_headers=b"X-Postal-MsgID: x\r\n", count_live_outgoing=True)
        self.pool.call("record", record_deliveries_txn, NOW + 1, [record])
        message: Any = self.pool.call("m", get_message_txn, self.server_id, stored.id)
        self.assertEqual((message.status, message.held, message.hold_expiry), ("Held", True, NOW + 1 + 7 * 86400))
        [delivery] = self.pool.call("d", deliveries_for_message_txn, stored.id)
        self.assertEqual(delivery.details, "Server is in development mode.")

        def rows(conn: Any) -> tuple[Any, ...]:
            queue = conn.execute(select(s.queued_messages)).all()
            hooks = [(r.event, json.loads(r.payload)) for r in conn.execute(select(s.webhook_requests)).all()]
            held = conn.execute(select(s.stats_daily.c.held)).scalar()
            return len(queue), hooks, held

        queue, hooks, held = self.pool.call("rows", rows)
        self.assertEqual((queue, held), (0, 1))
        [(event, payload)] = hooks
        self.assertEqual((event, payload["status"], payload["message"]["id"]), ("MessageHeld", "Held", stored.id))
        self.assertEqual(self.pool.call("live", live_total_txn, self.server_id, "outgoing", NOW + 2), 1)

    def test_webhook_output_truncated_as_postal_does(self) -> None:
        """A webhook's output is at most 512 characters, ending "..." when cut, as Postal's truncate."""
        self.pool.call("hook", create_webhook_txn, NOW, self.server_id, "https://h.test/", None, True, [])
        [stored] = queue_messages(self.pool, self.account, ["a@dest.test"])
        item: Any
        [item] = self.pool.call("claim", claim_work_txn, NOW, "w", 60.0, 10)
        record = DeliveryRecord(queue_id=item.queued.id, message_id=stored.id, server_id=self.server_id,
                                status="HardFail", details="rejected", holder="w", output="5" * 600)
        self.pool.call("record", record_deliveries_txn, NOW + 1, [record])
        payload = self.pool.call("hook", lambda c: json.loads(c.execute(select(s.webhook_requests.c.payload)).scalar()))
        self.assertEqual(payload["output"], "5" * 509 + "...")

    def test_retry_record_keeps_the_row(self) -> None:
        """A retry record unlocks the row, counts the attempt and sets retry_after."""
        [stored] = queue_messages(self.pool, self.account, ["a@dest.test"])
        [item] = self.pool.call("claim", claim_work_txn, NOW, "w", 60.0, 10)
        record = DeliveryRecord(queue_id=item.queued.id, message_id=stored.id, server_id=self.server_id,
                                status="SoftFail", details="x", holder="w", retry_at=NOW + 300)
        self.pool.call("record", record_deliveries_txn, NOW, [record])
        row = self.pool.call("q", lambda c: tuple(c.execute(select(
            s.queued_messages.c.attempts, s.queued_messages.c.retry_after, s.queued_messages.c.locked_by)).one()))
        self.assertEqual(row, (1, NOW + 300, None))

    def test_group_commit_of_mixed_outcomes(self) -> None:
        """
        One transaction stores sent, held, retried, hard-failed and vanished
        outcomes; ids come back in order, and a sent address leaves the
        suppression list once, noted on the first outcome only.
        """
        recipients = ["a@dest.test", "A@dest.test", "b@dest.test", "c@dest.test", "d@dest.test", "e@dest.test"]
        stored = queue_messages(self.pool, self.account, recipients)
        self.pool.call("sup", add_suppression_txn, NOW, self.server_id, "a@dest.test", "x", 30)
        items: Any = self.pool.call("claim", claim_work_txn, NOW, "w", 60.0, 10)
        by_message = {item.queued.message_id: item.queued.id for item in items}

        def record(i: int, status: str, **kw: Any) -> DeliveryRecord:
            return DeliveryRecord(queue_id=by_message[stored[i].id], message_id=stored[i].id,
                                  server_id=self.server_id, status=status, details=status, holder="w", **kw)

        gone = record(5, "Sent")
        self.pool.call("rm", lambda c: c.execute(s.messages.delete().where(s.messages.c.id == stored[5].id)).rowcount)
        records = [record(0, "Sent", unsuppress=True), record(1, "Sent", unsuppress=True), record(2, "Held"),
                   record(3, "SoftFail", retry_at=NOW + 300), record(4, "HardFail"), gone]
        ids: Any = self.pool.call("record", record_deliveries_txn, NOW, records)
        self.assertIsNone(ids[5])
        self.assertEqual(ids[:5], sorted(ids[:5]))
        details = [self.pool.call("d", deliveries_for_message_txn, m.id)[0].details for m in stored[:5]]
        self.assertEqual(details, ["Sent Recipient removed from suppression list.", "Sent", "Held", "SoftFail",
                                   "HardFail"])
        self.assertIsNone(self.pool.call("get", get_suppression_txn, self.server_id, "a@dest.test", NOW))
        statuses = [self.pool.call("m", get_message_txn, self.server_id, m.id).status for m in stored[:5]]
        self.assertEqual(statuses, ["Sent", "Sent", "Held", "SoftFail", "HardFail"])
        queue = self.pool.call("q", lambda c: [tuple(r) for r in c.execute(select(
            s.queued_messages.c.message_id, s.queued_messages.c.attempts, s.queued_messages.c.locked_by)).all()])
        self.assertEqual(queue, [(stored[3].id, 1, None)])
        held = self.pool.call("held", lambda c: c.execute(select(s.stats_daily.c.held)).scalar())
        self.assertEqual(held, 1)

    def test_suppression_list(self) -> None:
        """Entries are case-insensitive, refreshed on re-add, ignored once expired and pruned."""
        self.pool.call("add", add_suppression_txn, NOW, self.server_id, "X@dest.test", "one", 30)
        self.pool.call("add", add_suppression_txn, NOW + 10, self.server_id, "x@dest.test", "two", 30)
        entry: Any = self.pool.call("get", get_suppression_txn, self.server_id, "x@DEST.test", NOW + 20)
        self.assertEqual((entry.reason, entry.keep_until), ("two", NOW + 10 + 30 * 86400))
        self.assertIsNone(self.pool.call("get", get_suppression_txn, self.server_id, "x@dest.test", NOW + 31 * 86400))
        self.assertEqual(self.pool.call("prune", prune_suppressions_txn, NOW + 31 * 86400), 1)
        self.assertFalse(self.pool.call("rm", remove_suppression_txn, self.server_id, "x@dest.test"))

    def test_live_stats_buckets_reset_after_half_an_hour(self) -> None:
        """Live counters add within a minute bucket and a bucket untouched for 30 minutes starts again."""
        for _ in range(3):
            self.pool.call("inc", increment_live_stats_txn, self.server_id, "outgoing", NOW)
        self.assertEqual(self.pool.call("t", live_total_txn, self.server_id, "outgoing", NOW + 1), 3)
        self.pool.call("inc", increment_live_stats_txn, self.server_id, "outgoing", NOW + 3600)
        self.assertEqual(self.pool.call("t", live_total_txn, self.server_id, "outgoing", NOW + 3601), 1)


globals().update(both_databases(_DeliveriesMixin))

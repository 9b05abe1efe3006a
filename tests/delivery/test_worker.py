# -*- test-case-name: tests.delivery.test_worker -*-
"""
Tests for L{postal.delivery.worker} and the outgoing pipeline it runs
(L{postal.delivery.outgoing}), with a synchronous database pool, a
C{task.Clock} and a sender that records what it is asked to send.
"""

from __future__ import annotations

import json
from typing import Any

import dkim
from sqlalchemy import select, update
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from postal.db.messages import deliveries_for_message_txn, get_message_txn
from postal.db.delivery_store import SQLDeliveryQueue
from postal.db.pool import SynchronousDatabasePool
from postal.db.queue import enqueue_message_txn
from postal.db.suppressions import add_suppression_txn, get_suppression_txn
from postal.db.webhooks import create_webhook_txn
from postal.delivery.outgoing import KeyCache, Policy
from postal.delivery.sender import SendResult
from postal.delivery.wakeup import Notifier
from postal.delivery.worker import DeliveryWorker
from postal.keys import dkim_record, load_private_key
from tests.dbhelpers import sqlite_engine
from tests.delivery.helpers import dkim_key_pem, make_account, queue_messages

NOW = 1_700_000_000.0
SENT = SendResult("Sent", "Message for x accepted by 127.0.0.1:25 (mx.dest.test)", "250 OK", False, "ABCDEFGH")


class RecordingSender:
    """Answers each send with C{result} (or a Deferred the test fires) and records the call."""

    def __init__(self, result: SendResult = SENT, hold: bool = False) -> None:
        self.result = result
        self.hold = hold
        self.calls: list[tuple[str, str, str, bytes]] = []
        self.waiting: list[Deferred[SendResult]] = []
        self.closed = False

    async def send(self, domain: str, mail_from: str, rcpt_to: str, data: bytes) -> SendResult:
        self.calls.append((domain, mail_from, rcpt_to, data))
        if self.hold:
            d: Deferred[SendResult] = Deferred()
            self.waiting.append(d)
            return await d
        return self.result

    def close_idle(self) -> Deferred[list[None]]:
        self.closed = True
        return succeed([])


class _CountingQueue(SQLDeliveryQueue):
    """The SQL queue, counting claims made alone and claims made with outcomes."""

    claims = 0
    claims_with_records = 0

    def claim(self, *args: Any) -> Deferred[Any]:
        self.claims += 1
        return super().claim(*args)

    def record(self, now: float, records: Any, claim: Any = None) -> Deferred[Any]:
        if claim is not None:
            self.claims_with_records += 1
        return super().record(now, records, claim)


class _Fixture(SynchronousTestCase):
    """An account, a webhook, a clock and a worker factory."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.pool = SynchronousDatabasePool(sqlite_engine(self))
        self.account = make_account(self.pool)
        self.pool.call("webhook", create_webhook_txn, NOW, self.account.server.id, "https://hooks.test/x",
                       None, True, [])
        self.policy = Policy(return_path_domain="rp.postal.test")

    def worker(self, sender: RecordingSender, **kw: Any) -> DeliveryWorker:
        worker = DeliveryWorker(self.clock, SQLDeliveryQueue(self.pool), sender, self.policy,
                                KeyCache(load_private_key(dkim_key_pem())), "worker-1", **kw)
        worker.startService()
        self.addCleanup(lambda: worker.running and worker.stopService())
        return worker

    def message(self, stored_id: int) -> Any:
        return self.pool.call("m", get_message_txn, self.account.server.id, stored_id)

    def deliveries(self, stored_id: int) -> list[Any]:
        return self.pool.call("d", deliveries_for_message_txn, stored_id)

    def queue_rows(self) -> list[Any]:
        return self.pool.call("q", lambda c: [tuple(r) for r in c.execute(
            select(s.queued_messages.c.message_id, s.queued_messages.c.attempts,
                   s.queued_messages.c.retry_after, s.queued_messages.c.locked_by)).all()])

    def webhook_events(self) -> list[tuple[str, dict[str, Any]]]:
        return self.pool.call("w", lambda c: [(r.event, json.loads(r.payload)) for r in c.execute(
            select(s.webhook_requests).order_by(s.webhook_requests.c.id)).all()])

    def execute(self, statement: Any) -> None:
        def run(conn: Any) -> None:
            conn.execute(statement)
        self.pool.call("execute", run)

    def set(self, table: Any, row_id: int, **values: Any) -> None:
        self.execute(update(table).where(table.c.id == row_id).values(**values))

class WorkerTests(_Fixture):
    def test_after_record_runs_once_outcomes_are_committed(self) -> None:
        """The after-record hook (waking the webhook sender) runs after the outcome and its webhook rows commit."""
        queue_messages(self.pool, self.account, ["user@dest.test"])
        seen: list[list[str]] = []
        self.worker(RecordingSender(), after_record=lambda: seen.append([e for e, _ in self.webhook_events()]))
        self.assertEqual(seen, [["MessageSent"]])

    def test_webhook_sender_is_not_woken_when_no_webhook_wants_the_outcome(self) -> None:
        """Outcomes that queued no webhook request do not wake the webhook sender (it would only poll)."""
        self.execute(update(s.webhooks).values(enabled=False))
        queue_messages(self.pool, self.account, ["user@dest.test"])
        woken: list[int] = []
        sender = RecordingSender()
        self.worker(sender, after_record=lambda: woken.append(1))
        self.assertEqual((len(sender.calls), woken, self.webhook_events()), (1, [], []))

    def test_next_claim_shares_the_transaction_recording_outcomes(self) -> None:
        """
        Once sends finish, the transaction that records their outcomes also
        claims the next messages: most rounds cost one write transaction,
        not two.  Every message is still sent once and recorded.
        """
        stored = queue_messages(self.pool, self.account, [f"u{i}@one.test" for i in range(40)])
        queue = _CountingQueue(self.pool)
        sender = RecordingSender(hold=True)
        worker = DeliveryWorker(self.clock, queue, sender, self.policy, KeyCache(load_private_key(dkim_key_pem())),
                                "worker-1", concurrency=8, per_destination=4, batch_size=8)
        worker.startService()
        self.addCleanup(lambda: worker.running and worker.stopService())
        while sender.waiting:
            waiting, sender.waiting = sender.waiting, []
            for d in waiting:
                d.callback(SENT)
        self.assertEqual(len(sender.calls), 40)
        self.assertEqual({self.message(m.id).status for m in stored}, {"Sent"})
        self.assertEqual(self.queue_rows(), [])
        # Claims alone: the first, and a few when a connection ran dry.
        self.assertLess(queue.claims, queue.claims_with_records)

    def test_sent_message_is_signed_recorded_and_dequeued(self) -> None:
        """A sent message is DKIM-signed, recorded Sent with a MessageSent webhook, and leaves the queue."""
        [stored] = queue_messages(self.pool, self.account, ["user@dest.test"])
        sender = RecordingSender()
        self.worker(sender)
        [(domain, mail_from, rcpt, data)] = sender.calls
        self.assertEqual((domain, rcpt), ("dest.test", "user@dest.test"))
        self.assertEqual(mail_from, f"{self.account.server.token}@rp.postal.test")
        self.assertTrue(data.startswith(f"Resent-Sender: {mail_from}\r\nDKIM-Signature:".encode()))
        self.assertIn(f"X-Postal-MsgID: {stored.token}\r\n".encode(), data)
        record = dkim_record(load_private_key(dkim_key_pem())).encode()
        selector = f"postal-{self.account.domain.dkim_identifier_string}._domainkey.example.com."
        self.assertTrue(dkim.verify(data, dnsfunc=lambda name, timeout=5: record if name.decode() == selector else b""))
        self.assertEqual(self.message(stored.id).status, "Sent")
        [delivery] = self.deliveries(stored.id)
        self.assertEqual((delivery.status, delivery.details, delivery.log_id),
                         ("Sent", SENT.details, "ABCDEFGH"))
        self.assertEqual(self.queue_rows(), [])
        [(event, payload)] = self.webhook_events()
        self.assertEqual(event, "MessageSent")
        self.assertEqual(sorted(payload), ["details", "message", "output", "sent_with_ssl", "status", "time",
                                           "timestamp"])
        self.assertEqual(payload["message"]["token"], stored.token)
        self.assertEqual(payload["message"]["spam_status"], "NotChecked")

    def test_custom_return_path_when_its_cname_checks_ok(self) -> None:
        """With the return-path CNAME OK the envelope sender is token@psrp.<domain>."""
        self.set(s.domains, self.account.domain.id, return_path_status="OK")
        queue_messages(self.pool, self.account, ["user@dest.test"])
        sender = RecordingSender()
        self.worker(sender)
        self.assertEqual(sender.calls[0][1], f"{self.account.server.token}@psrp.example.com")

    def test_soft_fail_schedules_retry(self) -> None:
        """A SoftFail keeps the message queued for 5 minutes, then 6.5, with MessageDelayed webhooks."""
        [stored] = queue_messages(self.pool, self.account, ["user@dest.test"])
        sender = RecordingSender(SendResult("SoftFail", "Temporary SMTP delivery error", "451 later"))
        self.worker(sender)
        self.assertEqual(self.queue_rows(), [(stored.id, 1, NOW + 300.0, None)])
        self.clock.advance(300)
        self.assertEqual(len(sender.calls), 2)
        self.assertEqual(self.queue_rows(), [(stored.id, 2, NOW + 300 + 390.0, None)])
        self.assertEqual([e for e, _ in self.webhook_events()], ["MessageDelayed", "MessageDelayed"])
        self.assertEqual(self.message(stored.id).status, "SoftFail")
        self.assertEqual(sender.calls[0][3], sender.calls[1][3], "signed once; retries send the same bytes")

    def test_retry_hint_overrides_schedule(self) -> None:
        """A remote's "try again in 30 seconds" retries after 40 seconds."""
        queue_messages(self.pool, self.account, ["user@dest.test"])
        self.worker(RecordingSender(SendResult("SoftFail", "busy", "421 try again in 30 seconds", retry_in=40)))
        self.assertEqual(self.queue_rows()[0][2], NOW + 40)

    def test_maximum_attempts(self) -> None:
        """After the last attempt the message hard-fails without a send and the recipient is suppressed."""
        [stored] = queue_messages(self.pool, self.account, ["user@dest.test"])
        self.execute(update(s.queued_messages).values(attempts=18))
        sender = RecordingSender()
        self.worker(sender)
        self.assertEqual(sender.calls, [])
        [delivery] = self.deliveries(stored.id)
        self.assertEqual((delivery.status, delivery.details),
                         ("HardFail", "Maximum number of delivery attempts (18) has been reached."))
        suppression = self.pool.call("s", get_suppression_txn, self.account.server.id, "user@dest.test", NOW)
        self.assertEqual(suppression and suppression.reason, "too many soft fails")

    def test_repeated_hard_fail_suppresses_and_holds(self) -> None:
        """A second hard failure within a day suppresses the address; the next message is held."""
        sender = RecordingSender(SendResult("HardFail", "Permanent SMTP delivery error", "550 no"))
        self.worker(sender)
        [first] = queue_messages(self.pool, self.account, ["user@dest.test"])
        self.clock.advance(5)
        [second] = queue_messages(self.pool, self.account, ["user@dest.test"])
        self.clock.advance(5)
        self.assertEqual(self.deliveries(first.id)[0].details, "Permanent SMTP delivery error")
        self.assertEqual(self.deliveries(second.id)[0].details, "Permanent SMTP delivery error "
                         "Recipient added to suppression list (too many hard fails).")
        [third] = queue_messages(self.pool, self.account, ["user@dest.test"])
        self.clock.advance(5)
        [held] = self.deliveries(third.id)
        self.assertEqual((held.status, held.details), (
            "Held", "Recipient (user@dest.test) is on the suppression list (reason: too many hard fails)"))
        self.assertEqual(len(sender.calls), 2)
        message = self.message(third.id)
        self.assertTrue(message.held)
        self.assertEqual(message.hold_expiry, NOW + 15 + 7 * 86400)

    def test_sent_removes_suppression_after_manual_release(self) -> None:
        """Releasing a suppressed message sends it and removes the address from the list."""
        self.pool.call("sup", add_suppression_txn, NOW, self.account.server.id, "user@dest.test", "x", 30)
        [stored] = queue_messages(self.pool, self.account, ["user@dest.test"])
        sender = RecordingSender()
        self.worker(sender)
        self.assertEqual(self.message(stored.id).status, "Held")
        self.pool.call("release", enqueue_message_txn, NOW, self.account.server.id, stored.id, "dest.test",
                       "outgoing-dest.test", True)
        self.clock.advance(5)
        deliveries = self.deliveries(stored.id)
        self.assertEqual(deliveries[-1].status, "Sent")
        self.assertTrue(deliveries[-1].details.endswith(" Recipient removed from suppression list."))

    def test_development_mode_and_credential_hold(self) -> None:
        """Development servers and holding credentials hold messages with Postal's texts."""
        [by_credential] = queue_messages(self.pool, self.account, ["a@dest.test"], credential_hold=True)
        sender = RecordingSender()
        self.worker(sender)
        self.assertEqual(self.deliveries(by_credential.id)[0].details,
                         "Credential is configured to hold all messages authenticated by it.")
        self.set(s.servers, self.account.server.id, mode="Development")
        [in_dev] = queue_messages(self.pool, self.account, ["b@dest.test"])
        self.clock.advance(5)
        self.assertEqual(self.deliveries(in_dev.id)[0].details, "Server is in development mode.")
        self.assertEqual(sender.calls, [])
        self.assertEqual([e for e, _ in self.webhook_events()], ["MessageHeld", "MessageHeld"])

    def test_suspended_server(self) -> None:
        """A suspended server's messages are held with Postal's text."""
        self.set(s.servers, self.account.server.id, suspended_at=NOW)
        [stored] = queue_messages(self.pool, self.account, ["a@dest.test"])
        self.worker(RecordingSender())
        self.assertEqual(self.deliveries(stored.id)[0].details, "Mail server has been suspended. No e-mails can "
                         "be processed at present. Contact support for assistance.")

    def test_send_limit(self) -> None:
        """Reaching the send limit holds messages and marks the server."""
        self.set(s.servers, self.account.server.id, send_limit=2)
        stored = queue_messages(self.pool, self.account, ["a@dest.test", "b@dest.test", "c@dest.test"])
        sender = RecordingSender()
        self.worker(sender, batch_size=1)
        self.assertEqual(len(sender.calls), 2)
        self.assertEqual(self.deliveries(stored[2].id)[0].details,
                         "Message held because send limit (2) has been reached.")
        exceeded = self.pool.call("srv", lambda c: c.execute(select(s.servers.c.send_limit_exceeded_at)).scalar())
        self.assertEqual(exceeded, NOW)

    def test_concurrency_limits(self) -> None:
        """No more than per_destination sends run to one domain, and no more than concurrency in all."""
        queue_messages(self.pool, self.account, [f"u{i}@one.test" for i in range(10)])
        queue_messages(self.pool, self.account, [f"u{i}@two.test" for i in range(10)])
        sender = RecordingSender(hold=True)
        self.worker(sender, concurrency=6, per_destination=2)
        domains = [c[0] for c in sender.calls]
        self.assertEqual(sorted(domains), ["one.test", "one.test"])
        for d in sender.waiting[:2]:
            d.callback(SENT)
        # Two slots came free: the one.test lanes go on, and two.test gets its own two.
        self.assertEqual(sorted(c[0] for c in sender.calls[2:]), ["one.test", "one.test", "two.test", "two.test"])

    def test_stop_releases_unstarted_and_finishes_started(self) -> None:
        """On stop, claimed but unstarted messages are released; started sends finish and are recorded."""
        stored = queue_messages(self.pool, self.account, [f"u{i}@one.test" for i in range(5)])
        sender = RecordingSender(hold=True)
        worker = self.worker(sender, per_destination=1)
        stopping = worker.stopService()
        self.assertNoResult(stopping)
        self.assertEqual(sorted(str(r[3]) for r in self.queue_rows()), ["None", "None", "None", "None", "worker-1"])
        sender.waiting[0].callback(SENT)
        self.successResultOf(stopping)
        self.assertEqual(self.message(stored[0].id).status, "Sent")
        self.assertEqual(len(self.queue_rows()), 4)
        self.assertTrue(sender.closed)

    def test_long_delivery_renews_lease(self) -> None:
        """A delivery that takes longer than the lease keeps renewing it."""
        queue_messages(self.pool, self.account, ["a@one.test"])
        sender = RecordingSender(hold=True)
        self.worker(sender, lease_seconds=60)
        for _ in range(10):
            self.clock.advance(20)
        until: Any = self.pool.call("l", lambda c: c.execute(select(s.queued_messages.c.locked_until)).scalar())
        self.assertGreater(until, self.clock.seconds())
        sender.waiting[0].callback(SENT)

    def test_lease_renewal_survives_a_failed_round(self) -> None:
        """A renewal that fails (database away for a moment) is logged; the next round renews."""
        class Flaky(SQLDeliveryQueue):
            failures = 1

            def renew(self, *args: Any) -> Deferred[int]:
                if self.failures:
                    self.failures -= 1
                    return fail(RuntimeError("database away"))
                return super().renew(*args)

        queue_messages(self.pool, self.account, ["a@one.test"])
        sender = RecordingSender(hold=True)
        worker = DeliveryWorker(self.clock, Flaky(self.pool), sender, self.policy,
                                KeyCache(load_private_key(dkim_key_pem())), "worker-1", lease_seconds=60)
        worker.startService()
        self.addCleanup(lambda: worker.running and worker.stopService())
        for _ in range(10):
            self.clock.advance(20)
        until: Any = self.pool.call("l", lambda c: c.execute(select(s.queued_messages.c.locked_until)).scalar())
        self.assertGreater(until, self.clock.seconds())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        sender.waiting[0].callback(SENT)

    def test_stop_completes_when_releasing_fails(self) -> None:
        """If giving unstarted rows back fails, the stop still completes; their leases run out."""
        class NoRelease(SQLDeliveryQueue):
            def release(self, *args: Any) -> Deferred[int]:
                return fail(RuntimeError("database away"))

        queue_messages(self.pool, self.account, [f"u{i}@one.test" for i in range(3)])
        sender = RecordingSender(hold=True)
        worker = DeliveryWorker(self.clock, NoRelease(self.pool), sender, self.policy,
                                KeyCache(load_private_key(dkim_key_pem())), "worker-1", per_destination=1)
        worker.startService()
        stopping = worker.stopService()
        sender.waiting[0].callback(SENT)
        self.successResultOf(stopping)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(sorted(str(r[3]) for r in self.queue_rows()), ["worker-1", "worker-1"])

    def test_wakeup_and_poll(self) -> None:
        """A wake-up claims at once; without one, the poll interval finds new rows."""
        notifier = Notifier()
        sender = RecordingSender()
        worker = self.worker(sender, poll_interval=2.0)
        notifier.subscribe(worker.wake)
        queue_messages(self.pool, self.account, ["a@one.test"])
        notifier.wake()
        self.assertEqual(len(sender.calls), 1)
        queue_messages(self.pool, self.account, ["b@one.test"])
        self.clock.advance(2.0)
        self.assertEqual(len(sender.calls), 2)

    def test_sender_exception_is_an_error_delivery(self) -> None:
        """An exception in the sender is recorded as Error and retried, and the worker carries on."""
        class Broken(RecordingSender):
            async def send(self, *args: Any) -> SendResult:
                raise RuntimeError("boom")
        [stored] = queue_messages(self.pool, self.account, ["a@one.test"])
        self.worker(Broken())
        [delivery] = self.deliveries(stored.id)
        self.assertEqual(delivery.status, "Error")
        self.assertEqual(delivery.details, "An internal error occurred while sending this message. "
                         "This message will be retried automatically.")
        self.assertEqual(self.queue_rows()[0][1], 1)
        self.flushLoggedErrors(RuntimeError)


class OperatorTests(_Fixture):
    """The operator's held-message operations, seen through the worker."""

    def test_bulk_release_by_domain_sends_held_messages(self) -> None:
        """Releasing every held message to a domain sends them despite development mode."""
        from postal.db.queue import QueueFilter, release_held_txn
        self.set(s.servers, self.account.server.id, mode="Development")
        stored = queue_messages(self.pool, self.account, ["a@one.test", "b@one.test", "c@two.test"])
        sender = RecordingSender()
        self.worker(sender)
        self.assertEqual(sender.calls, [])
        flt = QueueFilter(server_id=self.account.server.id, domain="one.test")
        self.assertEqual(self.pool.call("release", release_held_txn, NOW, flt), 2)
        self.clock.advance(5)
        self.assertEqual(sorted(c[2] for c in sender.calls), ["a@one.test", "b@one.test"])
        self.assertEqual(self.message(stored[2].id).status, "Held")

    def test_cancel_hold(self) -> None:
        """Cancelling a hold records HoldCancelled with Postal's text and sends nothing."""
        from postal.db.queue import HOLD_CANCELLED, QueueFilter, cancel_hold_txn
        self.set(s.servers, self.account.server.id, mode="Development")
        [stored] = queue_messages(self.pool, self.account, ["a@one.test"])
        sender = RecordingSender()
        self.worker(sender)
        flt = QueueFilter(server_id=self.account.server.id, ids=(stored.id,))
        self.assertEqual(self.pool.call("cancel", cancel_hold_txn, NOW, flt), 1)
        message = self.message(stored.id)
        self.assertEqual((message.status, message.held), ("HoldCancelled", False))
        self.assertEqual(self.deliveries(stored.id)[-1].details, HOLD_CANCELLED)
        self.assertEqual(self.pool.call("cancel", cancel_hold_txn, NOW, flt), 0)

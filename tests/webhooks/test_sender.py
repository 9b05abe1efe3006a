# -*- test-case-name: tests.webhooks.test_sender -*-
"""
The webhook sender against a receiver resource through L{StubTreq}, over a
real (SQLite) queue, with time under L{task.Clock}: headers, signatures,
basic auth, the retry schedule, attempt history and bounded concurrency.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import select, update
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from postal.db import organizations, schema as s, servers, webhooks
from postal.db.pool import SynchronousDatabasePool
from postal.db.webhook_requests import SQLWebhookQueue
from postal.keys import dkim_record, load_private_key
from postal.webhooks.retry import RETRY_DELAYS
from postal.webhooks.sender import SOCKET_ERROR_CODE, TIMEOUT_CODE, WebhookSender
from postal.webhooks.signing import RequestSigner
from tests.dbhelpers import sqlite_engine
from tests.web.apihelpers import SIGNING_PEM
from tests.webhooks.test_signing import public_key_from_dkim_record

START = 1796333415.0


class Receiver(Resource):
    """Records each request; answers with C{codes} in turn (the last one repeats), or never."""

    isLeaf = True

    def __init__(self, codes: list[int] | None = None, hang: bool = False) -> None:
        super().__init__()
        self.codes = codes or [200]
        self.hang = hang
        self.requests: list[dict[str, Any]] = []

    def render_POST(self, request: Any) -> Any:
        self.requests.append({
            "headers": {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()},
            "body": request.content.read(), "uri": request.uri,
        })
        if self.hang:
            return NOT_DONE_YET
        code = self.codes[min(len(self.requests) - 1, len(self.codes) - 1)]
        request.setResponseCode(code)
        return b"thanks" if code < 300 else b"nope"


class _RefusingClient:
    """A client whose every connection is refused, as a closed port refuses it."""

    def request(self, method: str, url: str, **kwargs: Any) -> Deferred[Any]:
        return fail(ConnectionRefusedError())


class SenderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pool = SynchronousDatabasePool(sqlite_engine(self))
        self.pool.call("org", organizations.create_organization_txn, 1.0, "Acme", None, None)
        self.server = self.pool.call("server", servers.create_server_txn, 1.0, "acme", "Main", None)
        self.webhook = self.pool.call("webhook", webhooks.create_webhook_txn, 1.0, self.server.id,
                                      "https://user:p%40ss@hooks.test/postal?x=1", "h", True, [])
        self.clock = Clock()
        self.clock.advance(START)
        self.key = load_private_key(SIGNING_PEM)

    def _sender(self, receiver: Resource | None = None, client: Any = None, **kwargs: Any) -> WebhookSender:
        sender = WebhookSender(
            queue=SQLWebhookQueue(self.pool), http=client or StubTreq(receiver), clock=self.clock,
            signer=RequestSigner(self.key), holder="test-holder", user_agent="Postal/0.1.0",
            poll_interval=1.0, **kwargs)
        return sender

    def _enqueue(self, count: int = 1) -> None:
        for i in range(count):
            self.pool.call("enqueue", webhooks.enqueue_webhook_event_txn, self.clock.seconds(), self.server.id,
                           "MessageSent", {"message": {"id": i}, "status": "Sent"})

    def _rows(self, table: Any) -> list[Any]:
        with self.pool.engine.connect() as conn:
            return list(conn.execute(select(table).order_by(table.c.id)).all())

    def test_delivered_signed(self) -> None:
        """A request is posted signed, with basic auth from the URL, and then deleted and logged."""
        receiver = Receiver([202])
        self._enqueue()
        queued = self._rows(s.webhook_requests)[0]
        sender = self._sender(receiver)
        sender.startService()
        self.addCleanup(sender.stopService)
        [got] = receiver.requests
        self.assertEqual(got["uri"], b"/postal?x=1")
        headers = got["headers"]
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["user-agent"], "Postal/0.1.0")
        self.assertEqual(headers["authorization"], "Basic " + base64.b64encode(b"user:p@ss").decode())
        public = public_key_from_dkim_record(dkim_record(self.key))
        public.verify(base64.b64decode(headers["x-postal-signature"]), got["body"], padding.PKCS1v15(), hashes.SHA1())
        public.verify(base64.b64decode(headers["x-postal-signature-256"]), got["body"], padding.PKCS1v15(),
                      hashes.SHA256())
        body = json.loads(got["body"])
        self.assertEqual(list(body), ["event", "timestamp", "payload", "uuid"])
        self.assertEqual((body["event"], body["timestamp"], body["uuid"], body["payload"]),
                         ("MessageSent", START, queued.uuid, {"message": {"id": 0}, "status": "Sent"}))
        self.assertEqual(self._rows(s.webhook_requests), [])
        [attempt] = self._rows(s.webhook_attempts)
        self.assertEqual((attempt.attempt, attempt.status_code, attempt.body, attempt.will_retry, attempt.url,
                          attempt.event), (1, 202, "thanks", False, self.webhook.url, "MessageSent"))
        self.assertEqual(self._rows(s.webhooks)[0].last_used_at, START)

    def test_retry_schedule(self) -> None:
        """Failures are retried after 2, 3, 6, 10 and 15 minutes; the sixth failure is final."""
        receiver = Receiver([500])
        self._enqueue()
        sender = self._sender(receiver)
        sender.startService()
        self.addCleanup(sender.stopService)
        times = [self.clock.seconds()]
        for delay in RETRY_DELAYS:
            self.clock.advance(delay - 1)
            self.assertEqual(len(receiver.requests), len(times), "retried too early")
            self.clock.advance(1)
            times.append(self.clock.seconds())
            self.assertEqual(len(receiver.requests), len(times))
        self.clock.advance(3600)
        self.assertEqual(len(receiver.requests), 6)
        self.assertEqual([b - a for a, b in zip(times, times[1:])], list(RETRY_DELAYS))
        attempts = self._rows(s.webhook_attempts)
        self.assertEqual([(a.attempt, a.status_code, a.will_retry) for a in attempts],
                         [(n, 500, n < 6) for n in range(1, 7)])
        self.assertEqual(self._rows(s.webhook_requests), [])

    def test_success_after_failure(self) -> None:
        """A retry that gets a 2xx finishes the request."""
        receiver = Receiver([503, 200])
        self._enqueue()
        sender = self._sender(receiver)
        sender.startService()
        self.addCleanup(sender.stopService)
        [row] = self._rows(s.webhook_requests)
        self.assertEqual((row.attempts, row.retry_after, row.error),
                         (1, START + 120, "Couldn't send to URL. Code received was 503"))
        self.clock.advance(120)
        self.assertEqual(self._rows(s.webhook_requests), [])
        self.assertEqual([a.will_retry for a in self._rows(s.webhook_attempts)], [True, False])

    def test_connection_refused(self) -> None:
        """A refused connection is logged with a negative code and retried."""
        self._enqueue()
        sender = self._sender(client=_RefusingClient())
        sender.startService()
        self.addCleanup(sender.stopService)
        [attempt] = self._rows(s.webhook_attempts)
        self.assertEqual((attempt.status_code, attempt.will_retry), (SOCKET_ERROR_CODE, True))

    def test_timeout(self) -> None:
        """A receiver that does not answer within 5 seconds is a timeout, retried."""
        receiver = Receiver(hang=True)
        self._enqueue()
        sender = self._sender(receiver)
        sender.startService()
        self.addCleanup(sender.stopService)
        self.clock.advance(4.9)
        self.assertEqual(self._rows(s.webhook_attempts), [])
        self.clock.advance(0.1)
        [attempt] = self._rows(s.webhook_attempts)
        self.assertEqual((attempt.status_code, attempt.will_retry), (TIMEOUT_CODE, True))

    def test_bounded_concurrency(self) -> None:
        """No more than C{concurrency} requests are in flight; the rest wait their turn."""
        receiver = Receiver(hang=True)
        self._enqueue(7)
        sender = self._sender(receiver, concurrency=3)
        sender.startService()
        self.addCleanup(sender.stopService)
        self.assertEqual(len(receiver.requests), 3)
        self.clock.advance(5)  # the first three time out; three more start
        self.assertEqual(len(receiver.requests), 6)

    def test_new_requests_found_by_polling(self) -> None:
        """Requests queued while the sender idles are sent at the next poll."""
        receiver = Receiver([200])
        sender = self._sender(receiver)
        sender.startService()
        self.addCleanup(sender.stopService)
        self._enqueue()
        self.assertEqual(receiver.requests, [])
        self.clock.advance(1)
        self.assertEqual(len(receiver.requests), 1)

    def test_wake_during_a_claim_claims_again(self) -> None:
        """
        Woken while a claim is in flight (which may have looked before the new
        rows were committed), the sender claims again once it lands instead of
        leaving them to the next poll.
        """
        class SlowClaims(SQLWebhookQueue):
            def __init__(self, pool: Any) -> None:
                super().__init__(pool)
                self.held: list[tuple[Deferred[Any], Any]] = []

            def claim(self, *args: Any) -> Deferred[Any]:
                answer = super().claim(*args)
                d: Deferred[Any] = Deferred()
                self.held.append((d, answer))
                return d

        receiver = Receiver([200])
        queue = SlowClaims(self.pool)
        sender = WebhookSender(queue=queue, http=StubTreq(receiver), clock=self.clock,
                               signer=RequestSigner(self.key), holder="test-holder", user_agent="Postal/0.1.0",
                               poll_interval=60.0)
        sender.startService()
        self.addCleanup(sender.stopService)
        self._enqueue()
        sender.wake()
        d, answer = queue.held.pop()
        answer.addCallback(d.callback)  # the claim that ran before the row existed: nothing
        self.assertEqual(receiver.requests, [])
        d, answer = queue.held.pop()
        answer.addCallback(d.callback)
        self.assertEqual(len(receiver.requests), 1)

    def test_disabled_webhook_finishes_queue(self) -> None:
        """A webhook disabled after its requests were queued still gets them."""
        receiver = Receiver([200])
        self._enqueue(2)
        with self.pool.engine.begin() as conn:
            conn.execute(update(s.webhooks).values(enabled=False))
        sender = self._sender(receiver)
        sender.startService()
        self.addCleanup(sender.stopService)
        self.assertEqual(len(receiver.requests), 2)
        self._enqueue()
        self.assertEqual(self._rows(s.webhook_requests), [])

    def test_stop_releases_leases(self) -> None:
        """Stopping waits for requests in flight, then gives back any lease."""
        receiver = Receiver([200])
        sender = self._sender(receiver)
        sender.startService()
        self._enqueue()
        with self.pool.engine.begin() as conn:
            conn.execute(update(s.webhook_requests).values(locked_by="test-holder", locked_until=START + 999))
        self.successResultOf(sender.stopService())
        self.assertEqual([(r.locked_by, r.locked_until) for r in self._rows(s.webhook_requests)], [(None, None)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

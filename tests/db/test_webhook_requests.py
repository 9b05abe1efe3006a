# -*- test-case-name: tests.db.test_webhook_requests -*-
"""
The webhook request queue: leases, finishing attempts and the attempt
history, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from postal.db import organizations, schema as s, servers, webhooks
from postal.db.pool import SynchronousDatabasePool
from postal.db.webhook_requests import (
    AttemptOutcome, claim_webhook_requests_txn, finish_webhook_attempt_txn, release_webhook_requests_txn,
    webhook_attempts_txn,
)
from tests.dbhelpers import both_databases

NOW = 1796333415.0


class _WebhookRequestsMixin:
    make_engine: Any
    assertEqual: Any
    assertTrue: Any
    assertFalse: Any

    def setUp(self) -> None:
        self.pool = SynchronousDatabasePool(self.make_engine())
        self.pool.call("org", organizations.create_organization_txn, 1.0, "Acme", None, None)
        self.server = self.pool.call("server", servers.create_server_txn, 1.0, "acme", "Main", None)
        self.pool.call("webhook", webhooks.create_webhook_txn, 1.0, self.server.id, "http://h.test/", None, True, [])
        for i in range(3):
            self.pool.call("enqueue", webhooks.enqueue_webhook_event_txn, NOW + i, self.server.id,
                           "MessageSent", {"n": i})

    def _claim(self, holder: str = "a", now: float = NOW, limit: int = 10) -> list[Any]:
        return self.pool.call("claim", claim_webhook_requests_txn, now, holder, 60.0, limit)

    def _make_outcome(self, request_id: int, retry_at: float | None, code: int = 500, holder: str = "a") -> AttemptOutcome:
        return AttemptOutcome(request_id=request_id, holder=holder, status_code=code, body="b",
                              retry_at=retry_at, error="e" if retry_at else None, succeeded=200 <= code < 300)

    def test_claim_leases(self) -> None:
        """Claimed requests are leased: nobody else gets them until the lease runs out."""
        claimed = self._claim(limit=2)
        self.assertEqual([r.payload for r in claimed], ['{"n": 0}', '{"n": 1}'])
        self.assertEqual([r.payload for r in self._claim("b")], ['{"n": 2}'])
        self.assertEqual(self._claim("c"), [])
        self.assertEqual(len(self._claim("c", now=NOW + 61)), 3)

    def test_retry_after_respected(self) -> None:
        """A rescheduled request is not due before its retry time."""
        [first, *_] = self._claim()
        self.assertTrue(self.pool.call("finish", finish_webhook_attempt_txn, NOW, self._make_outcome(first.id, NOW + 120)))
        self.pool.call("release", release_webhook_requests_txn, "a")
        self.assertEqual(len(self._claim("b", now=NOW + 1)), 2)
        self.assertEqual(self._claim("c", now=NOW + 60), [])
        again = self._claim("c", now=NOW + 120)
        self.assertEqual([(r.id, r.attempts) for r in again][0], (first.id, 1))

    def test_finish_success_deletes_and_logs(self) -> None:
        """A successful attempt deletes the request, logs it and touches the webhook."""
        [first, *_] = self._claim()
        self.pool.call("finish", finish_webhook_attempt_txn, NOW + 5, self._make_outcome(first.id, None, code=200))
        with self.pool.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(s.webhook_requests.c.id))]
            used = conn.execute(select(s.webhooks.c.last_used_at)).scalar()
        self.assertFalse(first.id in ids)
        self.assertEqual(used, NOW + 5)
        [attempt] = self.pool.call("history", webhook_attempts_txn, self.server.id)
        self.assertEqual((attempt.uuid, attempt.attempt, attempt.status_code, attempt.will_retry, attempt.payload),
                         (first.uuid, 1, 200, False, '{"n": 0}'))

    def test_lost_lease(self) -> None:
        """Finishing without holding the lease changes nothing."""
        [first, *_] = self._claim()
        with self.pool.engine.begin() as conn:
            conn.execute(update(s.webhook_requests).values(locked_by="other"))
        self.assertFalse(self.pool.call("finish", finish_webhook_attempt_txn, NOW, self._make_outcome(first.id, None)))
        self.assertEqual(self.pool.call("history", webhook_attempts_txn, self.server.id), [])

    def test_history_newest_first(self) -> None:
        """The history lists attempts newest first and can be narrowed to one request."""
        claimed = self._claim()
        for i, request in enumerate(claimed):
            self.pool.call("finish", finish_webhook_attempt_txn, NOW + i, self._make_outcome(request.id, NOW + 100))
        history = self.pool.call("history", webhook_attempts_txn, self.server.id)
        self.assertEqual([a.timestamp for a in history], [NOW + 2, NOW + 1, NOW])
        one = self.pool.call("history", webhook_attempts_txn, self.server.id, uuid=claimed[0].uuid)
        self.assertEqual([a.uuid for a in one], [claimed[0].uuid])


globals().update(both_databases(_WebhookRequestsMixin))

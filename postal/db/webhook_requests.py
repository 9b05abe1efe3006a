# -*- test-case-name: tests.db.test_webhook_requests -*-
"""
The webhook request queue as the sender sees it: claiming due requests with
a lease (C{FOR UPDATE SKIP LOCKED} on PostgreSQL), and finishing an attempt:
delete on success or when attempts are exhausted, otherwise reschedule.
Every attempt is logged to C{webhook_attempts} (the UI's history) in the
same transaction that finishes it.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from zope.interface import implementer

from postal.db import schema as s
from postal.db._rows import to_record
from postal.db.pool import TransactionPool
from postal.webhooks.interfaces import IWebhookQueue
from postal.webhooks.values import AttemptOutcome, WebhookRequest

__all__ = [
    "WebhookRequest", "AttemptOutcome", "WebhookAttempt", "claim_webhook_requests_txn",
    "finish_webhook_attempt_txn", "finish_webhook_attempts_txn", "webhook_attempts_txn", "release_webhook_requests_txn", "SQLWebhookQueue",
]


@attrs.frozen
class WebhookAttempt:
    """One row of the history."""

    id: int
    server_id: int
    uuid: str
    webhook_id: int | None
    event: str
    url: str
    attempt: int
    timestamp: float
    status_code: int | None
    body: str | None
    payload: str | None
    will_retry: bool


def claim_webhook_requests_txn(
    conn: Connection, now: float, holder: str, lease_seconds: float, limit: int,
) -> list[WebhookRequest]:
    """
    Lease up to C{limit} due requests (never leased, or whose lease ran out)
    to C{holder}, oldest first.
    """
    r = s.webhook_requests
    due = and_(
        or_(r.c.locked_by.is_(None), r.c.locked_until < now),
        or_(r.c.retry_after.is_(None), r.c.retry_after <= now),
    )
    query = select(r).where(due).order_by(r.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    conn.execute(update(r).where(r.c.id.in_(ids)).values(locked_by=holder, locked_until=now + lease_seconds))
    return [to_record(WebhookRequest, row) for row in rows]


def finish_webhook_attempt_txn(conn: Connection, now: float, outcome: AttemptOutcome) -> bool:
    """
    Log the attempt and delete or reschedule the request.  Returns False
    (and changes nothing) when C{holder} no longer holds the lease.
    """
    r = s.webhook_requests
    row = conn.execute(select(r).where(r.c.id == outcome.request_id, r.c.locked_by == outcome.holder)).first()
    if row is None:
        return False
    attempt = row.attempts + 1
    conn.execute(s.webhook_attempts.insert().values(
        server_id=row.server_id, uuid=row.uuid, webhook_id=row.webhook_id, event=row.event, url=row.url,
        attempt=attempt, timestamp=now, status_code=outcome.status_code, body=outcome.body,
        payload=row.payload, will_retry=outcome.retry_at is not None,
    ))
    if outcome.retry_at is None:
        conn.execute(delete(r).where(r.c.id == row.id))
    else:
        conn.execute(update(r).where(r.c.id == row.id).values(
            attempts=attempt, retry_after=outcome.retry_at, error=outcome.error,
            locked_by=None, locked_until=None,
        ))
    if outcome.succeeded and row.webhook_id is not None:
        conn.execute(update(s.webhooks).where(s.webhooks.c.id == row.webhook_id).values(last_used_at=now))
    return True


def finish_webhook_attempts_txn(conn: Connection, now: float, outcomes: Sequence[AttemptOutcome]) -> list[bool]:
    """Group commit: several attempts finished in one transaction."""
    return [finish_webhook_attempt_txn(conn, now, outcome) for outcome in outcomes]


def release_webhook_requests_txn(conn: Connection, holder: str) -> int:
    """Give back every lease C{holder} has (a clean shutdown); returns how many."""
    r = s.webhook_requests
    result = conn.execute(update(r).where(r.c.locked_by == holder).values(locked_by=None, locked_until=None))
    return int(result.rowcount)


def webhook_attempts_txn(
    conn: Connection, server_id: int, limit: int = 30, offset: int = 0, uuid: str | None = None,
) -> list[WebhookAttempt]:
    """The history, newest first (30 a page, as Postal's UI shows it)."""
    a = s.webhook_attempts
    query = select(a).where(a.c.server_id == server_id)
    if uuid is not None:
        query = query.where(a.c.uuid == uuid)
    rows = conn.execute(query.order_by(a.c.timestamp.desc(), a.c.id.desc()).limit(limit).offset(offset)).all()
    return [to_record(WebhookAttempt, row) for row in rows]


@implementer(IWebhookQueue)
@attrs.define(eq=False)
class SQLWebhookQueue:
    """L{IWebhookQueue} over the database pool."""

    _pool: TransactionPool

    def claim(self, now: float, holder: str, lease_seconds: float, limit: int) -> Deferred[list[WebhookRequest]]:
        return self._pool.run_in_transaction(
            "webhook_claim", claim_webhook_requests_txn, now, holder, lease_seconds, limit)

    def finish(self, now: float, outcomes: Sequence[AttemptOutcome]) -> Deferred[list[bool]]:
        return self._pool.run_in_transaction("webhook_finish", finish_webhook_attempts_txn, now, outcomes)

    def release(self, holder: str) -> Deferred[int]:
        return self._pool.run_in_transaction("webhook_release", release_webhook_requests_txn, holder)

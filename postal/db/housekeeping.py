# -*- test-case-name: tests.db.test_cron_store -*-
"""
The cron role's small periodic clean-ups, each a bounded batch: expiring
held messages (HoldCancelled), pruning expired suppression entries and
pruning webhook request history.  Callers repeat a batch until it returns 0.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, delete, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s

__all__ = [
    "HOLD_CANCELLED_DETAILS", "expire_held_messages_txn", "prune_expired_suppressions_txn",
    "prune_webhook_attempts_txn", "delete_batch_txn",
]

#: Postal's text on the delivery row that ends an expired hold.
HOLD_CANCELLED_DETAILS = "The hold on this message has been removed without action."


def delete_batch_txn(conn: Connection, table: Table, condition: ColumnElement[bool], limit: int) -> int:
    """Delete up to C{limit} rows of C{table} matching C{condition}."""
    ids = list(conn.execute(select(table.c.id).where(condition).order_by(table.c.id).limit(limit)).scalars())
    if ids:
        conn.execute(delete(table).where(table.c.id.in_(ids)))
    return len(ids)


def expire_held_messages_txn(conn: Connection, now: float, limit: int) -> int:
    """
    End the hold of up to C{limit} messages whose hold expired before
    C{now}: each gets a HoldCancelled delivery row and that status, is no
    longer held, and leaves the queue (Postal's C{cancel_hold}).
    """
    m = s.messages
    ids = list(conn.execute(select(m.c.id).where(
        m.c.held.is_(True), m.c.hold_expiry.is_not(None), m.c.hold_expiry < now,
    ).order_by(m.c.id).limit(limit)).scalars())
    if not ids:
        return 0
    conn.execute(s.deliveries.insert(), [
        dict(message_id=message_id, status="HoldCancelled", details=HOLD_CANCELLED_DETAILS,
             sent_with_ssl=False, timestamp=now)
        for message_id in ids
    ])
    conn.execute(update(m).where(m.c.id.in_(ids)).values(
        status="HoldCancelled", held=False, hold_expiry=None, last_delivery_attempt=now,
    ))
    conn.execute(delete(s.queued_messages).where(s.queued_messages.c.message_id.in_(ids)))
    return len(ids)


def prune_expired_suppressions_txn(conn: Connection, now: float, limit: int) -> int:
    """Delete up to C{limit} suppression entries kept until before C{now}."""
    return delete_batch_txn(conn, s.suppressions, s.suppressions.c.keep_until < now, limit)


def prune_webhook_attempts_txn(conn: Connection, before: float, limit: int) -> int:
    """Delete up to C{limit} webhook history rows from before C{before}."""
    return delete_batch_txn(conn, s.webhook_attempts, s.webhook_attempts.c.timestamp < before, limit)

# -*- test-case-name: tests.db.test_queue -*-
"""
The outgoing/incoming message queue: claims with a lease, batched by
destination, and the operations the requeuer and operators need.

A claim sets C{locked_by}, C{locked_at} and C{locked_until}; a worker that
dies simply stops renewing and the requeuer returns its rows once the lease
has passed.  No function here ever deletes a row that a worker may still be
delivering, and none deletes a row because its lease is stale (Postal does;
we return it to the queue instead).  On PostgreSQL the claim uses C{FOR
UPDATE SKIP LOCKED} so many workers claim disjoint rows without waiting; on
SQLite the pool's C{BEGIN IMMEDIATE} serialises writers, which is enough.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import attrs
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import to_record
from postal.db.delivery_batch import records_from_rows
from postal.delivery.values import QueueStats, RequeueResult

__all__ = [
    "QueuedMessage", "QueueStats", "QueueFilter", "RequeueResult", "next_retry_at_txn",
    "QUEUE_CHANNEL", "notify_queue_txn", "release_held_txn", "cancel_hold_txn", "HOLD_CANCELLED",
    "claim_batch_txn", "release_txn", "renew_leases_txn", "requeue_txn", "queue_stats_txn",
    "requeue_and_measure_txn",
    "list_queue_txn", "retry_queued_txn", "remove_queued_txn", "enqueue_message_txn",
]


@attrs.frozen
class QueuedMessage:
    id: int
    server_id: int
    message_id: int
    domain: str | None
    attempts: int
    retry_after: float | None
    locked_by: str | None
    locked_until: float | None
    manual: bool
    batch_key: str | None
    created_at: float


@attrs.frozen
class QueueFilter:
    """Which queue rows an operator's bulk operation applies to."""

    server_id: int
    ids: tuple[int, ...] = ()
    domain: str | None = None


_q = s.queued_messages


def _ready(now: float):  # type: ignore[no-untyped-def]
    return and_(_q.c.locked_by.is_(None), or_(_q.c.retry_after.is_(None), _q.c.retry_after <= now))


def claim_batch_txn(
    conn: Connection, now: float, holder: str, lease_seconds: float, limit: int,
    skip_batch_keys: Sequence[str] = (), batch_prefix: str | None = None,
) -> list[QueuedMessage]:
    """
    Claim the oldest ready row whose batch key is not in C{skip_batch_keys}
    and up to C{limit - 1} more ready rows with the same batch key (Postal's
    batching: one destination, one connection).  C{batch_prefix} limits the
    claim to one kind of work (C{"outgoing-"}).  Returns the claimed rows.
    """
    first_query = select(_q.c.id, _q.c.batch_key).where(_ready(now)).order_by(_q.c.id).limit(1)
    if batch_prefix is not None:
        first_query = first_query.where(_q.c.batch_key.startswith(batch_prefix, autoescape=True))
    if skip_batch_keys:
        first_query = first_query.where(or_(_q.c.batch_key.is_(None), _q.c.batch_key.not_in(skip_batch_keys)))
    first = conn.execute(first_query.with_for_update(skip_locked=True)).first()
    if first is None:
        return []
    ids = [first.id]
    if limit > 1 and first.batch_key is not None:
        more = conn.execute(
            select(_q.c.id).where(_ready(now), _q.c.batch_key == first.batch_key, _q.c.id != first.id)
            .order_by(_q.c.id).limit(limit - 1).with_for_update(skip_locked=True)
        ).scalars().all()
        ids.extend(more)
    conn.execute(update(_q).where(_q.c.id.in_(ids)).values(
        locked_by=holder, locked_at=now, locked_until=now + lease_seconds,
    ))
    rows = conn.execute(select(_q).where(_q.c.id.in_(ids)).order_by(_q.c.id)).all()
    return records_from_rows(QueuedMessage, rows)


def release_txn(conn: Connection, holder: str, queue_ids: Iterable[int]) -> int:
    """Give claimed rows back untouched (shutdown, or a lease we cannot keep)."""
    ids = list(queue_ids)
    if not ids:
        return 0
    return int(conn.execute(update(_q).where(_q.c.id.in_(ids), _q.c.locked_by == holder).values(
        locked_by=None, locked_at=None, locked_until=None,
    )).rowcount)


def renew_leases_txn(conn: Connection, now: float, holder: str, queue_ids: Iterable[int],
                     lease_seconds: float) -> int:
    """Extend the lease of rows this holder still owns; returns how many it still owns."""
    ids = list(queue_ids)
    if not ids:
        return 0
    return int(conn.execute(update(_q).where(_q.c.id.in_(ids), _q.c.locked_by == holder).values(
        locked_until=now + lease_seconds,
    )).rowcount)


def requeue_txn(conn: Connection, now: float) -> RequeueResult:
    """
    Return rows whose lease has passed (their worker died) and retries that
    came due to the ready queue.  Never deletes anything.
    """
    expired = conn.execute(update(_q).where(_q.c.locked_by.is_not(None), _q.c.locked_until < now).values(
        locked_by=None, locked_at=None, locked_until=None,
    )).rowcount
    due = conn.execute(update(_q).where(
        _q.c.locked_by.is_(None), _q.c.retry_after.is_not(None), _q.c.retry_after <= now,
    ).values(retry_after=None)).rowcount
    return RequeueResult(expired_leases=int(expired), due_retries=int(due))


def next_retry_at_txn(conn: Connection) -> float | None:
    """When the next deferred row comes due (the requeuer sleeps until then)."""
    value = conn.execute(select(func.min(_q.c.retry_after)).where(_q.c.locked_by.is_(None))).scalar()
    return None if value is None else float(value)


def queue_stats_txn(conn: Connection, now: float) -> QueueStats:
    row = conn.execute(select(
        func.count(),
        func.count().filter(_ready(now)),
        func.count().filter(and_(_q.c.locked_by.is_(None), _q.c.retry_after > now)),
        func.count().filter(_q.c.locked_by.is_not(None)),
        func.min(_q.c.created_at),
    ).select_from(_q)).one()
    return QueueStats(size=int(row[0]), ready=int(row[1]), deferred=int(row[2]), locked=int(row[3]),
                      oldest_created_at=None if row[4] is None else float(row[4]))


def requeue_and_measure_txn(conn: Connection, now: float) -> tuple[RequeueResult, QueueStats]:
    """The requeuer's pass: L{requeue_txn} (notifying workers on PostgreSQL), then L{queue_stats_txn}."""
    result = requeue_txn(conn, now)
    if result.due_retries or result.expired_leases:
        notify_queue_txn(conn)
    return result, queue_stats_txn(conn, now)


def _filtered(query, flt: QueueFilter):  # type: ignore[no-untyped-def]
    query = query.where(_q.c.server_id == flt.server_id)
    if flt.ids:
        query = query.where(_q.c.message_id.in_(flt.ids))
    if flt.domain is not None:
        query = query.where(_q.c.domain == flt.domain.lower())
    return query


def list_queue_txn(conn: Connection, flt: QueueFilter, limit: int = 1000) -> list[QueuedMessage]:
    rows = conn.execute(_filtered(select(_q), flt).order_by(_q.c.id).limit(limit)).all()
    return [to_record(QueuedMessage, r) for r in rows]


def retry_queued_txn(conn: Connection, flt: QueueFilter) -> int:
    """Operator "retry now": make matching unclaimed rows ready at once (Postal sets retry_after NULL)."""
    query = _filtered(update(_q), flt).where(_q.c.locked_by.is_(None))
    return int(conn.execute(query.values(retry_after=None)).rowcount)


def remove_queued_txn(conn: Connection, flt: QueueFilter) -> int:
    """Operator "remove from queue": delete matching rows that no worker holds."""
    query = _filtered(delete(_q), flt).where(_q.c.locked_by.is_(None))
    return int(conn.execute(query).rowcount)


def enqueue_message_txn(conn: Connection, now: float, server_id: int, message_id: int,
                        domain: str | None, batch_key: str | None, manual: bool) -> None:
    """Queue (again) a stored message: releases of held messages (Postal's C{add_to_message_queue})."""
    existing = conn.execute(select(_q.c.id).where(_q.c.message_id == message_id)).first()
    if existing is not None:
        conn.execute(update(_q).where(_q.c.id == existing.id).values(manual=manual, retry_after=None))
        return
    conn.execute(_q.insert().values(
        server_id=server_id, message_id=message_id, domain=domain, attempts=0, manual=manual,
        batch_key=batch_key, created_at=now,
    ))


#: The PostgreSQL NOTIFY channel workers LISTEN on.
QUEUE_CHANNEL = "postal_queue"


def notify_queue_txn(conn: Connection) -> None:
    """
    Tell listening workers that queue rows are ready.  On PostgreSQL the
    NOTIFY is delivered when the surrounding transaction commits (never
    before the rows are visible); elsewhere it does nothing.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {QUEUE_CHANNEL}")


def _held_ids(conn: Connection, flt: QueueFilter) -> list[tuple[int, str | None]]:
    m = s.messages
    query = select(m.c.id, m.c.rcpt_to).where(m.c.server_id == flt.server_id, m.c.held.is_(True))
    if flt.ids:
        query = query.where(m.c.id.in_(flt.ids))
    if flt.domain is not None:
        query = query.where(func.lower(m.c.rcpt_to).endswith("@" + flt.domain.lower(), autoescape=True))
    return [(int(r.id), r.rcpt_to) for r in conn.execute(query.order_by(m.c.id)).all()]


def release_held_txn(conn: Connection, now: float, flt: QueueFilter) -> int:
    """
    Operator "release": queue held messages again with C{manual} set, so
    the holds a release may bypass (development mode, credential hold,
    suppression list) are skipped, as Postal's release does.
    """
    held = _held_ids(conn, flt)
    for message_id, rcpt_to in held:
        domain = (rcpt_to or "").rpartition("@")[2].lower() or None
        enqueue_message_txn(conn, now, flt.server_id, message_id, domain,
                            f"outgoing-{domain}" if domain else None, manual=True)
    if held:
        notify_queue_txn(conn)
    return len(held)


#: Postal's delivery text when a hold is cancelled.
HOLD_CANCELLED = "The hold on this message has been removed without action."


def cancel_hold_txn(conn: Connection, now: float, flt: QueueFilter) -> int:
    """Operator "cancel hold": a HoldCancelled delivery, the hold removed, nothing sent."""
    held = _held_ids(conn, flt)
    for message_id, _ in held:
        conn.execute(s.deliveries.insert().values(
            message_id=message_id, status="HoldCancelled", details=HOLD_CANCELLED, sent_with_ssl=False,
            timestamp=now))
        conn.execute(update(s.messages).where(s.messages.c.id == message_id).values(
            status="HoldCancelled", held=False, hold_expiry=None))
        conn.execute(delete(_q).where(_q.c.message_id == message_id, _q.c.locked_by.is_(None)))
    return len(held)

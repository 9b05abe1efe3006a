# -*- test-case-name: tests.db.test_deliveries -*-
"""
The common outcomes (sent, held, soft failures, errors) of a group commit
written with a fixed number of statements per batch instead of several per
message: one executemany for the delivery rows, one per shape of message
update, one DELETE for finished queue rows and one executemany for
retries.  L{postal.db.deliveries.record_deliveries_txn} sends the rest
(hard failures and suppressions, whose checks read the rows earlier
outcomes wrote) through the one-at-a-time path.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence, TypeVar

import attrs

from sqlalchemy import bindparam, delete, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.delivery.values import DeliveryRecord

__all__ = [
    "is_simple", "insert_deliveries", "update_messages", "update_queue_rows", "message_values", "records_from_rows",
]

_R = TypeVar("_R")

_DAY = 86400.0
_ATTEMPTED = ("Sent", "SoftFail", "HardFail")


def records_from_rows(cls: type[_R], rows: Sequence[Any]) -> list[_R]:
    """
    L{postal.db._rows.to_record} for many rows of one query: the columns
    are matched to C{cls}'s fields once, not per row (claims convert
    hundreds of rows a second).
    """
    if not rows:
        return []
    columns = list(rows[0]._fields)
    pairs = [(f.name, columns.index(f.name)) for f in attrs.fields(cls) if f.name in columns]  # type: ignore[arg-type]
    return [cls(**{name: row[i] for name, i in pairs}) for row in rows]


def is_simple(record: DeliveryRecord) -> bool:
    """Whether the outcome's rows depend on nothing another outcome of the batch writes."""
    return record.suppress_reason is None and record.status != "HardFail"


def message_values(now: float, record: DeliveryRecord) -> dict[str, Any]:
    """The message row's new columns for this outcome."""
    held = record.status == "Held"
    values: dict[str, Any] = {
        "status": record.status, "held": held,
        "hold_expiry": now + record.hold_expiry_days * _DAY if held else None,
    }
    if record.status in _ATTEMPTED:
        values["last_delivery_attempt"] = now
    if record.prepended_headers is not None:
        values["prepended_headers"] = record.prepended_headers
    return values


def insert_deliveries(conn: Connection, now: float, records: Sequence[DeliveryRecord],
                      details: Sequence[str]) -> list[int]:
    """The delivery rows, in one statement batch; returns their ids in C{records}' order."""
    if not records:
        return []
    d = s.deliveries
    params = [{
        "message_id": r.message_id, "status": r.status, "details": text[:250],
        "output": None if r.output is None else r.output[:250], "sent_with_ssl": r.sent_with_ssl,
        "log_id": r.log_id, "timestamp": now, "time": r.time,
    } for r, text in zip(records, details)]
    result = conn.execute(d.insert().returning(d.c.id, sort_by_parameter_order=True), params)
    return [int(row[0]) for row in result.all()]


@functools.lru_cache(maxsize=32)
def _message_update(names: tuple[str, ...]) -> Any:
    m = s.messages
    return update(m).where(m.c.id == bindparam("p_id")).values({n: bindparam("p_" + n) for n in names})


def update_messages(conn: Connection, now: float, records: Sequence[DeliveryRecord]) -> None:
    """Each message's status columns: one executemany per shape of update."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        values = message_values(now, record)
        params = {"p_" + k: v for k, v in values.items()}
        params["p_id"] = record.message_id
        by_shape.setdefault(tuple(values), []).append(params)
    for names, params_list in by_shape.items():
        conn.execute(_message_update(names), params_list)


@functools.lru_cache(maxsize=1)
def _queue_retry() -> Any:
    q = s.queued_messages
    return update(q).where(q.c.id == bindparam("p_id"), q.c.locked_by == bindparam("p_holder")).values(
        attempts=q.c.attempts + 1, retry_after=bindparam("p_retry"),
        locked_by=None, locked_at=None, locked_until=None, manual=False)


def update_queue_rows(conn: Connection, records: Sequence[DeliveryRecord]) -> None:
    """Delete finished rows and reschedule retries, only where the lease is still the recorder's."""
    q = s.queued_messages
    finished: dict[str, list[int]] = {}
    retries = []
    for record in records:
        if record.retry_at is None:
            finished.setdefault(record.holder, []).append(record.queue_id)
        else:
            retries.append({"p_id": record.queue_id, "p_holder": record.holder, "p_retry": record.retry_at})
    for holder, ids in finished.items():
        conn.execute(delete(q).where(q.c.id.in_(ids), q.c.locked_by == holder))
    if retries:
        conn.execute(_queue_retry(), retries)

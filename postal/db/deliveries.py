# -*- test-case-name: tests.db.test_deliveries -*-
"""
What the worker reads before a delivery and writes after it.

L{claim_work_txn} claims a batch and loads everything the outgoing pipeline
decides on (message, server, domain, credential, raw message, suppression,
send-limit volume) in the same transaction.  L{record_deliveries_txn}
writes outcomes: for each, the delivery row, the message's status, the
queue update, statistics, suppression changes and the webhook requests;
several outcomes may share one transaction (group commit), but the rows of
one outcome are never split across transactions.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import to_record
from postal.db.credentials import Credential
from postal.db.domains import Domain
from postal.db.messages import Message
from postal.db.queue import QueuedMessage, claim_batch_txn
from postal.db.servers import Server, get_server_txn
from postal.db.stats import increment_live_stats_txn, increment_period_stats_txn, live_total_txn
from postal.db.suppressions import (
    Suppression, add_suppression_txn, recent_hard_fails_txn, remove_suppression_txn,
)
from postal.db.webhooks import enqueue_webhook_event_txn, webhooks_for_event_txn
from postal.errors import NotFound

__all__ = ["WorkItem", "DeliveryRecord", "claim_work_txn", "record_deliveries_txn", "WEBHOOK_EVENT_FOR_STATUS"]

#: The webhook event each delivery status fires (api-contract.md section 3.6).
WEBHOOK_EVENT_FOR_STATUS = {
    "Sent": "MessageSent", "SoftFail": "MessageDelayed", "HardFail": "MessageDeliveryFailed",
    "Held": "MessageHeld",
}
_DAY = 86400.0


@attrs.frozen
class WorkItem:
    """One claimed queue row and what the pipeline needs to decide about it."""

    queued: QueuedMessage
    message: Message | None
    server: Server | None
    domain: Domain | None = None
    credential: Credential | None = None
    raw: bytes | None = None
    prepended_headers: bytes | None = None
    suppression: Suppression | None = None
    live_outgoing: int = 0


@attrs.frozen
class DeliveryRecord:
    """The outcome of processing one queued message, as it will be stored."""

    queue_id: int
    message_id: int
    server_id: int
    status: str
    details: str
    holder: str
    output: str | None = None
    sent_with_ssl: bool = False
    log_id: str | None = None
    time: float | None = None
    #: None: remove the queue row; a time: retry then (attempts + 1).
    retry_at: float | None = None
    hold_expiry_days: int = 7
    count_live_outgoing: bool = False
    #: "approaching", "exceeded", "clear" or None (no send-limit change).
    send_limit_state: str | None = None
    prepended_headers: bytes | None = None
    #: Suppression list changes: add with a reason, or remove on success.
    suppress_reason: str | None = None
    suppress_days: int = 30
    unsuppress: bool = False
    #: Postal's rule: a hard failure after another in the last day suppresses.
    suppress_on_repeated_hard_fail: bool = False


def _by_id(conn: Connection, table: Any, cls: type[Any], ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = conn.execute(select(table).where(table.c.id.in_(ids))).all()
    return {r.id: to_record(cls, r) for r in rows}


def _suppressed(conn: Connection, now: float, claimed: Sequence[QueuedMessage],
                messages: dict[int, Any]) -> dict[tuple[int, str], Suppression]:
    wanted: dict[int, set[str]] = {}
    for queued in claimed:
        row = messages.get(queued.message_id)
        if row is not None and row.scope == "outgoing" and row.rcpt_to:
            wanted.setdefault(queued.server_id, set()).add(row.rcpt_to.strip().lower())
    found: dict[tuple[int, str], Suppression] = {}
    for server_id, addresses in wanted.items():
        rows = conn.execute(select(s.suppressions).where(
            s.suppressions.c.server_id == server_id, s.suppressions.c.type == "recipient",
            s.suppressions.c.address.in_(addresses), s.suppressions.c.keep_until >= now,
        )).all()
        found.update({(server_id, r.address): to_record(Suppression, r) for r in rows})
    return found


def claim_work_txn(
    conn: Connection, now: float, holder: str, lease_seconds: float, limit: int,
    skip_batch_keys: Sequence[str] = (), batch_prefix: str | None = None,
) -> list[WorkItem]:
    """
    Claim one destination's batch and load what the pipeline needs, in one
    transaction and a fixed number of queries per batch.
    """
    claimed = claim_batch_txn(conn, now, holder, lease_seconds, limit, skip_batch_keys, batch_prefix)
    if not claimed:
        return []
    message_rows = {r.id: r for r in conn.execute(select(s.messages).where(
        s.messages.c.id.in_([q.message_id for q in claimed]))).all()}
    raw_ids = {r.raw_message_id for r in message_rows.values() if r.raw_message_id is not None}
    raws = {r.id: bytes(r.data) for r in conn.execute(select(s.raw_messages.c.id, s.raw_messages.c.data).where(
        s.raw_messages.c.id.in_(raw_ids))).all()} if raw_ids else {}
    domains = _by_id(conn, s.domains, Domain, {r.domain_id for r in message_rows.values() if r.domain_id})
    credentials = _by_id(conn, s.credentials, Credential,
                         {r.credential_id for r in message_rows.values() if r.credential_id})
    servers: dict[int, Server | None] = {}
    live: dict[int, int] = {}
    for server_id in {q.server_id for q in claimed}:
        try:
            server: Server | None = get_server_txn(conn, server_id)
        except NotFound:
            server = None
        servers[server_id] = server
        if server is not None and server.send_limit is not None:
            live[server_id] = live_total_txn(conn, server_id, "outgoing", now)
    suppressions = _suppressed(conn, now, claimed, message_rows)
    items = []
    for queued in claimed:
        row = message_rows.get(queued.message_id)
        if row is None:
            items.append(WorkItem(queued=queued, message=None, server=None))
            continue
        prepended = row._mapping["prepended_headers"]
        items.append(WorkItem(
            queued=queued, message=to_record(Message, row), server=servers[queued.server_id],
            domain=domains.get(row.domain_id), credential=credentials.get(row.credential_id),
            raw=raws.get(row.raw_message_id), prepended_headers=None if prepended is None else bytes(prepended),
            suppression=suppressions.get((queued.server_id, (row.rcpt_to or "").strip().lower()))
            if row.scope == "outgoing" else None,
            live_outgoing=live.get(queued.server_id, 0),
        ))
    return items


def message_webhook_hash(message: Any) -> dict[str, Any]:
    """Postal's C{webhook_hash} of a message row (api-contract.md section 3.6)."""
    if not message.inspected:
        spam_status = "NotChecked"
    else:
        spam_status = "Spam" if message.spam else "NotSpam"
    return {
        "id": message.id, "token": message.token, "direction": message.scope,
        "message_id": message.message_id, "to": message.rcpt_to, "from": message.mail_from,
        "subject": message.subject, "timestamp": float(message.timestamp),
        "spam_status": spam_status, "tag": message.tag,
    }


def _apply_suppression(conn: Connection, now: float, record: DeliveryRecord, message: Any) -> str:
    details = record.details
    if record.suppress_reason is not None:
        add_suppression_txn(conn, now, record.server_id, message.rcpt_to, record.suppress_reason,
                            record.suppress_days)
    if record.suppress_on_repeated_hard_fail and record.status == "HardFail" and message.rcpt_to:
        if recent_hard_fails_txn(conn, record.server_id, message.rcpt_to, now - _DAY, message.id):
            add_suppression_txn(conn, now, record.server_id, message.rcpt_to, "too many hard fails",
                                record.suppress_days)
            details += " Recipient added to suppression list (too many hard fails)."
    if record.unsuppress and message.rcpt_to:
        if remove_suppression_txn(conn, record.server_id, message.rcpt_to):
            details += " Recipient removed from suppression list."
    return details


def _update_queue(conn: Connection, record: DeliveryRecord) -> None:
    q = s.queued_messages
    mine = (q.c.id == record.queue_id, q.c.locked_by == record.holder)
    if record.retry_at is None:
        conn.execute(delete(q).where(*mine))
    else:
        conn.execute(update(q).where(*mine).values(
            attempts=q.c.attempts + 1, retry_after=record.retry_at,
            locked_by=None, locked_at=None, locked_until=None, manual=False,
        ))


def _update_server(conn: Connection, now: float, record: DeliveryRecord) -> None:
    state = record.send_limit_state
    if state is None:
        return
    values: dict[str, Any] = {"send_limit_approaching_at": None, "send_limit_exceeded_at": None}
    if state == "approaching":
        values["send_limit_approaching_at"] = now
    elif state == "exceeded":
        values["send_limit_exceeded_at"] = now
    conn.execute(update(s.servers).where(s.servers.c.id == record.server_id).values(**values))


@attrs.define
class _FlushState:
    """What one group-commit transaction shares between its records."""

    rows: dict[int, Any]
    live: dict[int, int] = attrs.field(factory=dict)
    subscribed: dict[tuple[int, str], bool] = attrs.field(factory=dict)

    def has_webhooks(self, conn: Connection, server_id: int, event: str) -> bool:
        key = (server_id, event)
        if key not in self.subscribed:
            self.subscribed[key] = bool(webhooks_for_event_txn(conn, server_id, event))
        return self.subscribed[key]


def record_delivery_txn(conn: Connection, now: float, record: DeliveryRecord,
                        state: _FlushState | None = None) -> int | None:
    """Store one outcome; returns the delivery row id (None if the message is gone)."""
    standalone = state is None
    if state is None:
        state = _FlushState(rows=_message_rows(conn, [record.message_id]))
    row = state.rows.get(record.message_id)
    if row is None:
        conn.execute(delete(s.queued_messages).where(s.queued_messages.c.id == record.queue_id))
        return None
    details = _apply_suppression(conn, now, record, row)
    output = None if record.output is None else record.output[:250]
    inserted = conn.execute(s.deliveries.insert().values(
        message_id=record.message_id, status=record.status, details=details[:250], output=output,
        sent_with_ssl=record.sent_with_ssl, log_id=record.log_id, timestamp=now, time=record.time,
    )).inserted_primary_key
    assert inserted is not None
    delivery_id = inserted[0]
    held = record.status == "Held"
    message_values: dict[str, Any] = {
        "status": record.status, "held": held,
        "hold_expiry": now + record.hold_expiry_days * _DAY if held else None,
    }
    if record.status in ("Sent", "SoftFail", "HardFail"):
        message_values["last_delivery_attempt"] = now
    if record.prepended_headers is not None:
        message_values["prepended_headers"] = record.prepended_headers
    conn.execute(update(s.messages).where(s.messages.c.id == record.message_id).values(**message_values))
    _update_queue(conn, record)
    _update_server(conn, now, record)
    if record.count_live_outgoing:
        state.live[record.server_id] = state.live.get(record.server_id, 0) + 1
    counts = {"held": int(held), "bounces": int(record.status == "HardFail")}
    increment_period_stats_txn(conn, record.server_id, now, counts)
    event = WEBHOOK_EVENT_FOR_STATUS.get(record.status)
    if event is not None and state.has_webhooks(conn, record.server_id, event):
        enqueue_webhook_event_txn(conn, now, record.server_id, event, {
            "message": message_webhook_hash(row), "status": record.status, "details": details,
            "output": (record.output or "")[:512], "sent_with_ssl": record.sent_with_ssl,
            "timestamp": now, "time": record.time,
        })
    if standalone:
        _flush_live(conn, now, state)
    return int(delivery_id)


def _message_rows(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    return {r.id: r for r in conn.execute(select(s.messages).where(s.messages.c.id.in_(list(ids)))).all()}


def _flush_live(conn: Connection, now: float, state: _FlushState) -> None:
    live, state.live = state.live, {}
    for server_id, count in live.items():
        increment_live_stats_txn(conn, server_id, "outgoing", now, count)


def record_deliveries_txn(conn: Connection, now: float, records: Sequence[DeliveryRecord]) -> list[int | None]:
    """Group commit: several outcomes in one transaction, each complete."""
    state = _FlushState(rows=_message_rows(conn, [r.message_id for r in records]))
    ids = [record_delivery_txn(conn, now, r, state) for r in records]
    _flush_live(conn, now, state)
    return ids

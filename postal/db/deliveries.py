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
from postal.db.delivery_batch import (
    insert_deliveries, is_simple, message_values, records_from_rows, update_messages, update_queue_rows,
)
from postal.db.domains import Domain
from postal.db.messages import Message
from postal.db.queue import QueuedMessage, claim_batch_txn
from postal.db.servers import Server, get_server_txn
from postal.db.stats import increment_live_stats_txn, increment_period_stats_txn, live_total_txn
from postal.db.suppressions import (
    Suppression, add_suppression_txn, recent_hard_fails_txn, remove_suppression_txn, remove_suppressions_txn,
)
from postal.db.webhooks import enqueue_webhook_event_txn, webhooks_for_event_txn
from postal.delivery.values import ClaimRequest, DeliveryRecord, Recorded, WorkItem
from postal.errors import NotFound
from postal.webhooks.payloads import status_payload

__all__ = [
    "WorkItem", "DeliveryRecord", "claim_work_txn", "record_deliveries_txn", "record_and_claim_txn",
    "WEBHOOK_EVENT_FOR_STATUS",
]

#: The webhook event each delivery status fires (api-contract.md section 3.6).
WEBHOOK_EVENT_FOR_STATUS = {
    "Sent": "MessageSent", "SoftFail": "MessageDelayed", "HardFail": "MessageDeliveryFailed",
    "Held": "MessageHeld",
}
_DAY = 86400.0


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
    messages = dict(zip(message_rows, records_from_rows(Message, list(message_rows.values()))))
    items = []
    for queued in claimed:
        row = message_rows.get(queued.message_id)
        if row is None:
            items.append(WorkItem(queued=queued, message=None, server=None))
            continue
        prepended = row._mapping["prepended_headers"]
        items.append(WorkItem(
            queued=queued, message=messages[row.id], server=servers[queued.server_id],
            domain=domains.get(row.domain_id), credential=credentials.get(row.credential_id),
            raw=raws.get(row.raw_message_id), prepended_headers=None if prepended is None else bytes(prepended),
            suppression=suppressions.get((queued.server_id, (row.rcpt_to or "").strip().lower()))
            if row.scope == "outgoing" else None,
            live_outgoing=live.get(queued.server_id, 0),
        ))
    return items


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
    webhooks_queued: int = 0

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
    [delivery_id] = insert_deliveries(conn, now, [record], [details])
    conn.execute(update(s.messages).where(s.messages.c.id == record.message_id).values(
        **message_values(now, record)))
    _update_queue(conn, record)
    counts = {"held": int(record.status == "Held"), "bounces": int(record.status == "HardFail")}
    increment_period_stats_txn(conn, record.server_id, now, counts)
    _follow_up(conn, now, record, row, details, state)
    if standalone:
        _flush_live(conn, now, state)
    return delivery_id


def _follow_up(conn: Connection, now: float, record: DeliveryRecord, row: Any, details: str,
               state: _FlushState) -> None:
    """The server's send-limit marks, the live counter and the webhook request of one outcome."""
    _update_server(conn, now, record)
    if record.count_live_outgoing:
        state.live[record.server_id] = state.live.get(record.server_id, 0) + 1
    event = WEBHOOK_EVENT_FOR_STATUS.get(record.status)
    if event is not None and state.has_webhooks(conn, record.server_id, event):
        state.webhooks_queued += enqueue_webhook_event_txn(conn, now, record.server_id, event, status_payload(
            row, record.status, details, record.output, record.sent_with_ssl, now, record.time))


def _unsuppress_details(conn: Connection, records: Sequence[DeliveryRecord], rows: dict[int, Any]) -> list[str]:
    """
    Take the sent recipients off the suppression list (one query per server)
    and say so in the details of the first outcome for each removed address.
    """
    wanted: dict[int, set[str]] = {}
    for record in records:
        rcpt = rows[record.message_id].rcpt_to
        if record.unsuppress and rcpt:
            wanted.setdefault(record.server_id, set()).add(rcpt)
    removed = {(server_id, address) for server_id, addresses in wanted.items()
               for address in remove_suppressions_txn(conn, server_id, addresses)}
    details = []
    for record in records:
        rcpt = rows[record.message_id].rcpt_to
        key = (record.server_id, (rcpt or "").strip().lower())
        if record.unsuppress and rcpt and key in removed:
            removed.discard(key)
            details.append(record.details + " Recipient removed from suppression list.")
        else:
            details.append(record.details)
    return details


def _record_simple(conn: Connection, now: float, records: Sequence[DeliveryRecord],
                   state: _FlushState) -> list[int]:
    """Outcomes that pass L{is_simple}, with a fixed number of statements for the batch."""
    details = _unsuppress_details(conn, records, state.rows)
    ids = insert_deliveries(conn, now, records, details)
    update_messages(conn, now, records)
    update_queue_rows(conn, records)
    held: dict[int, int] = {}
    for record, text in zip(records, details):
        if record.status == "Held":
            held[record.server_id] = held.get(record.server_id, 0) + 1
        _follow_up(conn, now, record, state.rows[record.message_id], text, state)
    for server_id, count in held.items():
        increment_period_stats_txn(conn, server_id, now, {"held": count})
    return ids


def _message_rows(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    return {r.id: r for r in conn.execute(select(s.messages).where(s.messages.c.id.in_(list(ids)))).all()}


def _flush_live(conn: Connection, now: float, state: _FlushState) -> None:
    live, state.live = state.live, {}
    for server_id, count in live.items():
        increment_live_stats_txn(conn, server_id, "outgoing", now, count)


def record_deliveries_txn(conn: Connection, now: float, records: Sequence[DeliveryRecord]) -> list[int | None]:
    """
    Group commit: several outcomes in one transaction, each complete.
    Returns the delivery row ids in C{records}' order (None where the
    message is gone and only its queue row was deleted).
    """
    return list(record_and_claim_txn(conn, now, records).delivery_ids)


def record_and_claim_txn(
    conn: Connection, now: float, records: Sequence[DeliveryRecord], claim: ClaimRequest | None = None,
) -> Recorded:
    """
    L{record_deliveries_txn}, then (with C{claim}) L{claim_work_txn} in the
    same transaction: the worker's next claim shares the outcomes' commit.
    """
    state = _FlushState(rows=_message_rows(conn, [r.message_id for r in records])) if records else _FlushState({})
    ids: list[int | None] = [None] * len(records)
    gone = [r.queue_id for r in records if r.message_id not in state.rows]
    if gone:
        conn.execute(delete(s.queued_messages).where(s.queued_messages.c.id.in_(gone)))
    simple = [i for i, r in enumerate(records) if r.message_id in state.rows and is_simple(r)]
    if simple:
        for i, delivery_id in zip(simple, _record_simple(conn, now, [records[i] for i in simple], state)):
            ids[i] = delivery_id
    for i, record in enumerate(records):
        if record.message_id in state.rows and not is_simple(record):
            ids[i] = record_delivery_txn(conn, now, record, state)
    _flush_live(conn, now, state)
    claimed: list[WorkItem] = []
    if claim is not None:
        claimed = claim_work_txn(conn, now, claim.holder, claim.lease_seconds, claim.limit,
                                 claim.skip_batch_keys, claim.batch_prefix)
    return Recorded(delivery_ids=tuple(ids), webhooks_queued=state.webhooks_queued, claimed=tuple(claimed))

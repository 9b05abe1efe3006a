# -*- test-case-name: tests.db.test_messages -*-
"""
Messages: storing a received transaction (one raw message shared by one
message row and one queue row per recipient) in one transaction, and
reading messages and their deliveries back.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import inserted_id, to_record, to_record_or_none
from postal.db.queue import notify_queue_txn
from postal.db.stats import increment_period_stats_txn, increment_totals_txn
from postal.tokens import message_token

__all__ = [
    "NewMessage", "NewTransaction", "StoredMessage", "Message", "Delivery",
    "store_transaction_txn", "store_transactions_txn", "get_message_txn", "deliveries_for_message_txn",
    "raw_message_txn", "batch_key_for",
]


@attrs.frozen
class NewMessage:
    """One recipient of a received transaction."""

    scope: str  # "outgoing" or "incoming"
    rcpt_to: str
    mail_from: str
    server_id: int
    subject: str | None = None
    message_id: str | None = None
    domain_id: int | None = None
    credential_id: int | None = None
    route_id: int | None = None
    endpoint_id: int | None = None
    endpoint_type: str | None = None
    received_with_ssl: bool | None = None
    bounce: bool = False
    tag: str | None = None


@attrs.frozen
class NewTransaction:
    """A raw message and its recipients: stored together or not at all."""

    server_id: int
    raw: bytes
    messages: Sequence[NewMessage]


@attrs.frozen
class StoredMessage:
    id: int
    token: str
    rcpt_to: str
    message_id: str | None


@attrs.frozen
class Message:
    id: int
    server_id: int
    token: str
    scope: str
    rcpt_to: str | None
    mail_from: str | None
    subject: str | None
    message_id: str | None
    timestamp: float
    route_id: int | None
    domain_id: int | None
    credential_id: int | None
    status: str
    held: bool
    size: int | None
    last_delivery_attempt: float | None
    raw_message_id: int | None
    inspected: bool
    spam: bool
    spam_score: float
    threat: bool
    threat_details: str | None
    bounce: bool
    bounce_for_id: int
    tag: str | None
    loaded: float | None
    clicked: float | None
    received_with_ssl: bool | None
    hold_expiry: float | None
    endpoint_id: int | None
    endpoint_type: str | None


@attrs.frozen
class Delivery:
    id: int
    message_id: int
    status: str
    details: str | None
    output: str | None
    sent_with_ssl: bool
    log_id: str | None
    timestamp: float
    time: float | None


def recipient_domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def batch_key_for(message: NewMessage) -> str:
    """Postal's batch key: messages sharing one can share one connection."""
    if message.scope == "outgoing":
        return f"outgoing-{recipient_domain(message.rcpt_to)}"
    return f"incoming-rt:{message.route_id or ''}-ep:{message.endpoint_id or ''}-{message.endpoint_type or ''}"


def store_transaction_txn(conn: Connection, now: float, transaction: NewTransaction) -> list[StoredMessage]:
    """Store the raw message once, then a message row and a queue row per recipient."""
    return store_transactions_txn(conn, now, [transaction])[0]


# Built once: a statement with per-row parameters (executemany) costs a
# fraction of one built per row, which dominates a group commit's time.
_INSERT_RAW = insert(s.raw_messages).returning(s.raw_messages.c.id, sort_by_parameter_order=True)
_INSERT_MESSAGE = insert(s.messages).returning(s.messages.c.id, sort_by_parameter_order=True)
_INSERT_QUEUED = insert(s.queued_messages)


def _message_row(new: NewMessage, token: str, now: float, size: int, raw_id: int) -> dict[str, object]:
    return dict(
        server_id=new.server_id, token=token, scope=new.scope, rcpt_to=new.rcpt_to,
        mail_from=new.mail_from, subject=(new.subject or "")[:200] or None,
        message_id=new.message_id, timestamp=now, route_id=new.route_id,
        domain_id=new.domain_id, credential_id=new.credential_id, status="Pending",
        held=False, size=size, raw_message_id=raw_id,
        inspected=False, spam=False, spam_score=0, threat=False, bounce=new.bounce,
        bounce_for_id=0, tag=new.tag, received_with_ssl=new.received_with_ssl,
        tracked_links=0, tracked_images=0, parsed=False,
        endpoint_id=new.endpoint_id, endpoint_type=new.endpoint_type,
    )


def store_transactions_txn(
    conn: Connection, now: float, transactions: Sequence[NewTransaction],
) -> list[list[StoredMessage]]:
    """
    Group commit: several received transactions in one database transaction,
    with one multi-row INSERT per table and the statistics added once per
    server.  Same rows as L{store_transaction_txn} for each transaction.
    """
    if not transactions:
        return []
    raw_ids = [row[0] for row in conn.execute(_INSERT_RAW, [
        dict(server_id=t.server_id, data=t.raw, size=len(t.raw), created_at=now) for t in transactions
    ])]
    news = [(new, raw_id, len(t.raw), message_token())
            for t, raw_id in zip(transactions, raw_ids) for new in t.messages]
    if not news:
        return [[] for _ in transactions]
    message_ids = [row[0] for row in conn.execute(_INSERT_MESSAGE, [
        _message_row(new, token, now, size, raw_id) for new, raw_id, size, token in news
    ])]
    conn.execute(_INSERT_QUEUED, [
        dict(server_id=new.server_id, message_id=message_id, domain=recipient_domain(new.rcpt_to),
             route_id=new.route_id, attempts=0, manual=False, batch_key=batch_key_for(new),
             created_at=now)
        for (new, _, _, _), message_id in zip(news, message_ids)
    ])
    # Workers in other processes (PostgreSQL LISTEN) hear of it on commit.
    notify_queue_txn(conn)
    per_server: dict[int, dict[str, int]] = {}
    for new, _, _, _ in news:
        bucket = per_server.setdefault(new.server_id, {"outgoing": 0, "incoming": 0})
        bucket[new.scope] += 1
    for server_id, server_counts in per_server.items():
        increment_period_stats_txn(conn, server_id, now, server_counts)
    increment_totals_txn(conn, sum(c["outgoing"] for c in per_server.values()),
                         sum(c["incoming"] for c in per_server.values()))
    stored = iter(
        StoredMessage(id=message_id, token=token, rcpt_to=new.rcpt_to, message_id=new.message_id)
        for (new, _, _, token), message_id in zip(news, message_ids)
    )
    return [[next(stored) for _ in t.messages] for t in transactions]


def get_message_txn(conn: Connection, server_id: int, message_id: int) -> Message | None:
    row = conn.execute(select(s.messages).where(
        s.messages.c.id == message_id, s.messages.c.server_id == server_id
    )).first()
    return to_record_or_none(Message, row)


def deliveries_for_message_txn(conn: Connection, message_id: int) -> list[Delivery]:
    rows = conn.execute(select(s.deliveries).where(s.deliveries.c.message_id == message_id)
                        .order_by(s.deliveries.c.timestamp, s.deliveries.c.id)).all()
    return [to_record(Delivery, r) for r in rows]


def raw_message_txn(conn: Connection, raw_message_id: int) -> bytes | None:
    row = conn.execute(select(s.raw_messages.c.data).where(s.raw_messages.c.id == raw_message_id)).first()
    return None if row is None else bytes(row[0])

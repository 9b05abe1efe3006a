# -*- test-case-name: tests.web.test_api_v1 -*-
"""
The reads the HTTP API needs: who an API key belongs to (with what that
server may send from), and a message with what its expansions show.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from zope.interface import implementer

from postal.db import schema as s
from postal.db._rows import to_record
from postal.db.messages import (
    Delivery, Message, NewTransaction, StoredMessage, deliveries_for_message_txn, get_message_txn,
    store_transactions_txn,
)
from postal.db.pool import TransactionPool
from postal.db.servers import Server, get_server_txn
from postal.outgoing.interfaces import IAPIStore

__all__ = [
    "SendingDomain", "APISession", "Load", "Click", "MessageView",
    "api_session_txn", "message_view_txn", "message_deliveries_txn", "SQLAPIStore",
]


@attrs.frozen
class SendingDomain:
    """A verified domain a server may send from (its own or its organization's)."""

    id: int
    name: str
    use_for_any: bool
    server_owned: bool


@attrs.frozen
class APISession:
    """An API credential, its server and the domains that server may send from."""

    credential_id: int
    credential_hold: bool
    server: Server
    domains: tuple[SendingDomain, ...]


@attrs.frozen
class Load:
    ip_address: str | None
    user_agent: str | None
    timestamp: float


@attrs.frozen
class Click:
    url: str
    ip_address: str | None
    user_agent: str | None
    timestamp: float


@attrs.frozen
class MessageView:
    """A message with, when asked for, its raw bytes and its opens and clicks."""

    message: Message
    raw: bytes | None
    loads: tuple[Load, ...]
    clicks: tuple[Click, ...]


def _verified_domains_txn(conn: Connection, server: Server) -> tuple[SendingDomain, ...]:
    rows = conn.execute(
        select(s.domains.c.id, s.domains.c.name, s.domains.c.use_for_any, s.domains.c.server_id).where(
            s.domains.c.organization_id == server.organization_id,
            or_(s.domains.c.server_id == server.id, s.domains.c.server_id.is_(None)),
            s.domains.c.verified_at.is_not(None),
        ).order_by(s.domains.c.server_id.is_(None), s.domains.c.id)
    ).all()
    return tuple(
        SendingDomain(id=r.id, name=r.name, use_for_any=bool(r.use_for_any), server_owned=r.server_id is not None)
        for r in rows
    )


def api_session_txn(conn: Connection, key: str, now: float, touch: bool = True) -> APISession | None:
    """
    The session for API key C{key}, or None when no API credential has it.
    With C{touch}, a usable (not suspended) server's credential has its last
    use recorded.
    """
    row = conn.execute(select(s.credentials.c.id, s.credentials.c.server_id, s.credentials.c.hold).where(
        s.credentials.c.key == key, s.credentials.c.type == "API",
    )).first()
    if row is None:
        return None
    server = get_server_txn(conn, row.server_id)
    if server.suspended:
        return APISession(credential_id=row.id, credential_hold=bool(row.hold), server=server, domains=())
    if touch:
        conn.execute(update(s.credentials).where(s.credentials.c.id == row.id).values(last_used_at=now))
    return APISession(credential_id=row.id, credential_hold=bool(row.hold), server=server,
                      domains=_verified_domains_txn(conn, server))


def store_api_transactions_txn(
    conn: Connection, now: float, transactions: Sequence[NewTransaction],
) -> list[list[StoredMessage]]:
    """Store API messages (group commit) and record their credentials' last use in the same commit."""
    stored = store_transactions_txn(conn, now, transactions)
    used = {m.credential_id for t in transactions for m in t.messages if m.credential_id is not None}
    if used:
        conn.execute(update(s.credentials).where(s.credentials.c.id.in_(sorted(used))).values(last_used_at=now))
    return stored


def _loads_txn(conn: Connection, message_id: int) -> tuple[Load, ...]:
    rows = conn.execute(select(s.loads).where(s.loads.c.message_id == message_id)
                        .order_by(s.loads.c.timestamp, s.loads.c.id)).all()
    return tuple(to_record(Load, r) for r in rows)


def _clicks_txn(conn: Connection, message_id: int) -> tuple[Click, ...]:
    rows = conn.execute(
        select(s.links.c.url, s.clicks.c.ip_address, s.clicks.c.user_agent, s.clicks.c.timestamp)
        .join(s.links, s.links.c.id == s.clicks.c.link_id)
        .where(s.clicks.c.message_id == message_id)
        .order_by(s.clicks.c.timestamp, s.clicks.c.id)
    ).all()
    return tuple(to_record(Click, r) for r in rows)


def _raw_txn(conn: Connection, message: Message) -> bytes | None:
    if message.raw_message_id is None:
        return None
    row = conn.execute(select(s.raw_messages.c.data).where(s.raw_messages.c.id == message.raw_message_id)).first()
    if row is None:
        return None
    prepended = conn.execute(select(s.messages.c.prepended_headers).where(s.messages.c.id == message.id)).scalar()
    return (bytes(prepended) if prepended else b"") + bytes(row[0])


def message_view_txn(
    conn: Connection, server_id: int, message_id: int, with_raw: bool, with_activity: bool,
) -> MessageView | None:
    """Server C{server_id}'s message C{message_id}, or None when it has none."""
    message = get_message_txn(conn, server_id, message_id)
    if message is None:
        return None
    return MessageView(
        message=message,
        raw=_raw_txn(conn, message) if with_raw else None,
        loads=_loads_txn(conn, message.id) if with_activity else (),
        clicks=_clicks_txn(conn, message.id) if with_activity else (),
    )


def message_deliveries_txn(conn: Connection, server_id: int, message_id: int) -> list[Delivery] | None:
    """The deliveries of a message, oldest first, or None when the server has no such message."""
    if get_message_txn(conn, server_id, message_id) is None:
        return None
    return deliveries_for_message_txn(conn, message_id)


@implementer(IAPIStore)
@attrs.define(eq=False)
class SQLAPIStore:
    """L{IAPIStore} over the database pool."""

    _pool: TransactionPool

    def session_for_key(self, key: str, now: float, touch: bool) -> Deferred[APISession | None]:
        return self._pool.run_in_transaction("api_session", api_session_txn, key, now, touch)

    def store_transactions(
        self, now: float, transactions: Sequence[NewTransaction],
    ) -> Deferred[list[list[StoredMessage]]]:
        return self._pool.run_in_transaction("api_store_messages", store_api_transactions_txn, now, transactions)

    def message_view(
        self, server_id: int, message_id: int, with_raw: bool, with_activity: bool,
    ) -> Deferred[MessageView | None]:
        return self._pool.run_in_transaction(
            "api_message", message_view_txn, server_id, message_id, with_raw, with_activity)

    def deliveries(self, server_id: int, message_id: int) -> Deferred[list[Delivery] | None]:
        return self._pool.run_in_transaction("api_deliveries", message_deliveries_txn, server_id, message_id)

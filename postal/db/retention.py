# -*- test-case-name: tests.db.test_cron_store -*-
"""
Message retention (postal-behaviour.md section 3.8) as bounded batches.

Every function here deletes at most C{limit} rows of its driving table in
one transaction and returns how many it deleted; the caller repeats until
it gets 0.  Short transactions keep SQLite's single writer and
PostgreSQL's row locks free for intake and delivery in between.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s

__all__ = [
    "RetentionPolicy", "retention_policies_txn", "expire_raw_messages_txn", "raw_storage_bytes_txn",
    "trim_raw_storage_txn", "expire_messages_txn", "delete_messages_txn", "incremental_vacuum_txn",
    "MESSAGE_CHILD_TABLES",
]

#: Tables whose rows belong to one message, deleted before the message
#: (clicks before links, which they reference).
MESSAGE_CHILD_TABLES = (
    s.clicks, s.loads, s.spam_checks, s.deliveries, s.queued_messages, s.links,
)


@attrs.frozen
class RetentionPolicy:
    """A live server's retention settings; None means keep indefinitely."""

    server_id: int
    message_retention_days: int | None
    raw_message_retention_days: int | None
    raw_message_retention_size: int | None


def retention_policies_txn(conn: Connection) -> list[RetentionPolicy]:
    """The policy of every server that is not deleted."""
    rows = conn.execute(select(
        s.servers.c.id, s.servers.c.message_retention_days,
        s.servers.c.raw_message_retention_days, s.servers.c.raw_message_retention_size,
    ).where(s.servers.c.deleted_at.is_(None)).order_by(s.servers.c.id)).all()
    return [RetentionPolicy(r.id, r.message_retention_days, r.raw_message_retention_days,
                            r.raw_message_retention_size) for r in rows]


def _drop_raw_messages(conn: Connection, raw_ids: Sequence[int]) -> None:
    """Delete raw messages; their messages stay, with C{raw_message_id} NULL."""
    if not raw_ids:
        return
    conn.execute(update(s.messages).where(s.messages.c.raw_message_id.in_(raw_ids))
                 .values(raw_message_id=None))
    conn.execute(delete(s.raw_messages).where(s.raw_messages.c.id.in_(raw_ids)))


def expire_raw_messages_txn(conn: Connection, server_id: int, before: float, limit: int) -> int:
    """Delete up to C{limit} of the server's raw messages stored before C{before}."""
    raw_ids = list(conn.execute(select(s.raw_messages.c.id).where(
        s.raw_messages.c.server_id == server_id, s.raw_messages.c.created_at < before,
    ).order_by(s.raw_messages.c.id).limit(limit)).scalars())
    _drop_raw_messages(conn, raw_ids)
    return len(raw_ids)


def raw_storage_bytes_txn(conn: Connection, server_id: int) -> int:
    """Bytes of raw messages the server keeps."""
    total = conn.execute(select(func.coalesce(func.sum(s.raw_messages.c.size), 0))
                         .where(s.raw_messages.c.server_id == server_id)).scalar_one()
    return int(total)


def trim_raw_storage_txn(conn: Connection, server_id: int, max_bytes: int, limit: int) -> int:
    """
    Delete the server's oldest raw messages, up to C{limit} of them, until
    what remains fits in C{max_bytes}.
    """
    excess = raw_storage_bytes_txn(conn, server_id) - max_bytes
    if excess <= 0:
        return 0
    oldest = conn.execute(select(s.raw_messages.c.id, s.raw_messages.c.size).where(
        s.raw_messages.c.server_id == server_id,
    ).order_by(s.raw_messages.c.created_at, s.raw_messages.c.id).limit(limit)).all()
    chosen: list[int] = []
    for raw_id, size in oldest:
        if excess <= 0:
            break
        chosen.append(raw_id)
        excess -= size
    _drop_raw_messages(conn, chosen)
    return len(chosen)


def delete_messages_txn(conn: Connection, message_ids: Sequence[int]) -> None:
    """
    Delete messages with every row that belongs to them, and their raw
    messages once no other message shares them.
    """
    if not message_ids:
        return
    raw_ids = [r for r in conn.execute(select(s.messages.c.raw_message_id).distinct().where(
        s.messages.c.id.in_(message_ids), s.messages.c.raw_message_id.is_not(None),
    )).scalars()]
    for table in MESSAGE_CHILD_TABLES:
        conn.execute(delete(table).where(table.c.message_id.in_(message_ids)))
    conn.execute(delete(s.messages).where(s.messages.c.id.in_(message_ids)))
    if raw_ids:
        still_used = select(s.messages.c.id).where(s.messages.c.raw_message_id == s.raw_messages.c.id)
        conn.execute(delete(s.raw_messages).where(s.raw_messages.c.id.in_(raw_ids), ~still_used.exists()))


def expire_messages_txn(conn: Connection, server_id: int, before: float, limit: int) -> int:
    """Delete up to C{limit} of the server's messages received before C{before}."""
    ids = list(conn.execute(select(s.messages.c.id).where(
        s.messages.c.server_id == server_id, s.messages.c.timestamp < before,
    ).order_by(s.messages.c.id).limit(limit)).scalars())
    delete_messages_txn(conn, ids)
    return len(ids)


def incremental_vacuum_txn(conn: Connection, pages: int) -> int:
    """
    On SQLite, give up to C{pages} free pages back to the file system (the
    database is created with C{auto_vacuum=INCREMENTAL}, see
    L{postal.db.pool}); on PostgreSQL autovacuum does this and this does
    nothing.

    @return: the pages still free afterwards (0 on PostgreSQL).
    """
    if conn.dialect.name != "sqlite":
        return 0
    # The sqlite3 module steps a PRAGMA once, which frees one page; only
    # executescript() runs it to completion.  executescript() first
    # commits the (empty) BEGIN IMMEDIATE the pool opened, and the pool's
    # own commit is then a no-op, so keep this alone in its transaction.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
    return int(driver.execute("PRAGMA freelist_count").fetchone()[0])

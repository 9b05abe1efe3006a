# -*- test-case-name: tests.db.test_deliveries -*-
"""
The per-server recipient suppression list (postal-behaviour.md section 3.5):
addresses that failed too often are held instead of sent, for a number of
days, and come off the list as soon as a message to them is sent.
"""

from __future__ import annotations

from typing import Iterable

import attrs
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import to_record, to_record_or_none

__all__ = [
    "Suppression", "get_suppression_txn", "add_suppression_txn", "remove_suppression_txn",
    "remove_suppressions_txn",
    "suppressions_for_server_txn", "prune_suppressions_txn", "recent_hard_fails_txn",
]

_DAY = 86400.0


@attrs.frozen
class Suppression:
    id: int
    server_id: int
    type: str
    address: str
    reason: str | None
    timestamp: float
    keep_until: float


def _normal(address: str) -> str:
    return address.strip().lower()


def get_suppression_txn(conn: Connection, server_id: int, address: str, now: float) -> Suppression | None:
    """The live entry for C{address}; expired entries are ignored (as Postal's C{get})."""
    row = conn.execute(select(s.suppressions).where(
        s.suppressions.c.server_id == server_id, s.suppressions.c.type == "recipient",
        s.suppressions.c.address == _normal(address), s.suppressions.c.keep_until >= now,
    )).first()
    return to_record_or_none(Suppression, row)


def add_suppression_txn(conn: Connection, now: float, server_id: int, address: str, reason: str,
                        days: int) -> None:
    """Add C{address}, or refresh its reason and expiry when it is already listed."""
    keep_until = now + days * _DAY
    updated = conn.execute(update(s.suppressions).where(
        s.suppressions.c.server_id == server_id, s.suppressions.c.type == "recipient",
        s.suppressions.c.address == _normal(address),
    ).values(reason=reason, timestamp=now, keep_until=keep_until)).rowcount
    if not updated:
        conn.execute(s.suppressions.insert().values(
            server_id=server_id, type="recipient", address=_normal(address), reason=reason,
            timestamp=now, keep_until=keep_until,
        ))


def remove_suppression_txn(conn: Connection, server_id: int, address: str) -> bool:
    """Remove C{address}; True when it was listed."""
    return bool(conn.execute(delete(s.suppressions).where(
        s.suppressions.c.server_id == server_id, s.suppressions.c.type == "recipient",
        s.suppressions.c.address == _normal(address),
    )).rowcount)


def remove_suppressions_txn(conn: Connection, server_id: int, addresses: Iterable[str]) -> set[str]:
    """Remove every listed one of C{addresses}; returns those that were listed (normalised)."""
    wanted = {_normal(address) for address in addresses}
    if not wanted:
        return set()
    table = s.suppressions
    rows = conn.execute(select(table.c.id, table.c.address).where(
        table.c.server_id == server_id, table.c.type == "recipient", table.c.address.in_(wanted))).all()
    if rows:
        conn.execute(delete(table).where(table.c.id.in_([r.id for r in rows])))
    return {r.address for r in rows}


def suppressions_for_server_txn(conn: Connection, server_id: int, now: float) -> list[Suppression]:
    rows = conn.execute(select(s.suppressions).where(
        s.suppressions.c.server_id == server_id, s.suppressions.c.keep_until >= now,
    ).order_by(s.suppressions.c.timestamp.desc())).all()
    return [to_record(Suppression, r) for r in rows]


def prune_suppressions_txn(conn: Connection, now: float) -> int:
    """Delete expired entries (the cron role's daily task)."""
    return int(conn.execute(delete(s.suppressions).where(s.suppressions.c.keep_until < now)).rowcount)


def recent_hard_fails_txn(conn: Connection, server_id: int, rcpt_to: str, since: float,
                          other_than: int) -> int:
    """Other outgoing messages to C{rcpt_to} that hard-failed since C{since}."""
    m = s.messages
    return int(conn.execute(select(func.count()).select_from(m).where(and_(
        m.c.server_id == server_id, m.c.scope == "outgoing", m.c.rcpt_to == rcpt_to,
        m.c.status == "HardFail", m.c.timestamp >= since, m.c.id != other_than,
    ))).scalar_one())

# -*- test-case-name: tests.db.test_leases -*-
"""
Role leases: one row per single-active role (cron, requeuer) naming the
process that may run it until C{expires_at}.

Correct under concurrency on both engines.  Taking or renewing is one
conditional C{UPDATE} (holder is us, or the lease has expired), then, if no
row matched, an C{INSERT ... ON CONFLICT DO NOTHING}.  On PostgreSQL two
contenders updating the same expired row serialise on its row lock and the
second re-checks the condition against the first one's new row, so it
matches nothing; two inserting the first row meet the primary key and one
does nothing.  On SQLite every write transaction starts with C{BEGIN
IMMEDIATE} (see L{postal.db.pool.make_engine}), so contenders run one after
the other.  Either way an expired lease goes to exactly one contender.

Times are the callers' clocks; hosts sharing a database should run NTP.
"""

from __future__ import annotations

import attrs
from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import to_record_or_none

__all__ = ["Lease", "acquire_or_renew_txn", "release_txn", "get_lease_txn"]

_t = s.role_leases


@attrs.frozen
class Lease:
    role: str
    holder: str
    acquired_at: float
    expires_at: float


def acquire_or_renew_txn(conn: Connection, role: str, holder: str, now: float, period: float) -> bool:
    """
    Take C{role}'s lease for C{holder} until C{now + period}, or extend it if
    C{holder} already has it.

    @return: whether C{holder} holds the lease now.
    """
    renewed = conn.execute(
        update(_t)
        .where(and_(_t.c.role == role, or_(_t.c.holder == holder, _t.c.expires_at <= now)))
        .values(
            holder=holder,
            expires_at=now + period,
            acquired_at=case((_t.c.holder == holder, _t.c.acquired_at), else_=now),
        )
    )
    if renewed.rowcount == 1:
        return True
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    inserted = conn.execute(
        insert(_t)
        .values(role=role, holder=holder, acquired_at=now, expires_at=now + period)
        .on_conflict_do_nothing(index_elements=[_t.c.role])
        .returning(_t.c.role)
    )
    # RETURNING, not rowcount: psycopg reports -1 for this statement.
    return inserted.first() is not None


def release_txn(conn: Connection, role: str, holder: str) -> bool:
    """
    Give up C{role}'s lease if C{holder} has it, so a standby can take it at
    once rather than after it expires.

    @return: whether there was a lease of C{holder}'s to release.
    """
    result = conn.execute(delete(_t).where(and_(_t.c.role == role, _t.c.holder == holder)))
    return result.rowcount == 1


def get_lease_txn(conn: Connection, role: str) -> Lease | None:
    """The lease row for C{role}, expired or not, if there is one."""
    row = conn.execute(select(_t).where(_t.c.role == role)).first()
    return to_record_or_none(Lease, row)

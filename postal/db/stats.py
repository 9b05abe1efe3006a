# -*- test-case-name: tests.db.test_messages -*-
"""
Statistics counters: hourly/daily/monthly/yearly per server (UTC periods)
and the global totals.  Incremented inside the transaction that makes the
event they count, so they can never drift from the rows.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any, Mapping

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from postal.db import schema as s

__all__ = [
    "period_starts", "increment_period_stats_txn", "increment_totals_txn", "upsert_increment",
    "increment_live_stats_txn", "live_total_txn",
]


def period_starts(timestamp: float) -> dict[Table, float]:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    month = day.replace(day=1)
    year = month.replace(month=1)
    return {
        s.stats_hourly: hour.timestamp(),
        s.stats_daily: day.timestamp(),
        s.stats_monthly: month.timestamp(),
        s.stats_yearly: year.timestamp(),
    }


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], increments: tuple[str, ...], extra: tuple[str, ...],
) -> Any:
    # Built once per shape: constructing an ON CONFLICT statement (and its
    # "excluded" column collection) costs far more than executing it.
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    names = keys + increments + extra
    return insert.values({name: bindparam(name) for name in names}).on_conflict_do_update(
        index_elements=list(keys),
        set_={
            **{name: table.c[name] + insert.excluded[name] for name in increments},
            **{name: insert.excluded[name] for name in extra},
        },
    )


def upsert_increment(
    conn: Connection, table: Table, keys: Mapping[str, object], increments: Mapping[str, int],
    extra: Mapping[str, object] | None = None,
) -> None:
    """INSERT the row with C{increments} as values, or add them to the existing row."""
    extra = extra or {}
    statement = _upsert_statement(conn.dialect.name, table, tuple(keys), tuple(increments), tuple(extra))
    conn.execute(statement, {**keys, **increments, **extra})


def increment_period_stats_txn(
    conn: Connection, server_id: int, timestamp: float, counts: Mapping[str, int],
) -> None:
    """Add C{counts} (incoming, outgoing, held, bounces, spam) to every period row."""
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return
    for table, start in period_starts(timestamp).items():
        upsert_increment(conn, table, {"server_id": server_id, "time": start}, counts)


def increment_totals_txn(conn: Connection, outgoing: int, incoming: int) -> None:
    total = outgoing + incoming
    if not total:
        return
    result = conn.execute(update(s.statistics).where(s.statistics.c.id == 1).values(
        total_messages=s.statistics.c.total_messages + total,
        total_outgoing=s.statistics.c.total_outgoing + outgoing,
        total_incoming=s.statistics.c.total_incoming + incoming,
    ))
    if result.rowcount == 0:
        upsert_increment(conn, s.statistics, {"id": 1}, {
            "total_messages": total, "total_outgoing": outgoing, "total_incoming": incoming,
        })


def totals_txn(conn: Connection) -> dict[str, int]:
    row = conn.execute(select(s.statistics).where(s.statistics.c.id == 1)).first()
    if row is None:
        return {"total_messages": 0, "total_outgoing": 0, "total_incoming": 0}
    return {k: int(row._mapping[k]) for k in ("total_messages", "total_outgoing", "total_incoming")}


def increment_live_stats_txn(conn: Connection, server_id: int, kind: str, now: float, count: int = 1) -> None:
    """
    Add to this minute's live counter (Postal's C{live_stats}: 60 minute-of-hour
    buckets; a bucket last touched over 30 minutes ago starts again).
    """
    table = s.live_stats
    minute = int(now // 60) % 60
    key = (table.c.server_id == server_id, table.c.type == kind, table.c.minute == minute)
    fresh = conn.execute(update(table).where(*key, table.c.timestamp >= now - 1800).values(
        count=table.c.count + count, timestamp=now)).rowcount
    if fresh:
        return
    stale = conn.execute(update(table).where(*key).values(count=count, timestamp=now)).rowcount
    if not stale:
        upsert_increment(conn, table, {"server_id": server_id, "minute": minute, "type": kind},
                         {"count": count}, extra={"timestamp": now})


def live_total_txn(conn: Connection, server_id: int, kind: str, now: float, minutes: int = 60) -> int:
    """The live counter summed over the last C{minutes} (at most 60)."""
    from sqlalchemy import func

    table = s.live_stats
    total = conn.execute(select(func.coalesce(func.sum(table.c.count), 0)).where(
        table.c.server_id == server_id, table.c.type == kind, table.c.timestamp > now - minutes * 60,
    )).scalar_one()
    return int(total)

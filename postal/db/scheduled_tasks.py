# -*- test-case-name: tests.db.test_cron_store -*-
"""
The C{scheduled_tasks} table: each cron task's next run and its last
outcome.  Keeping the next run in the database is what lets a restarted
(or a standby) cron role neither repeat nor skip a run.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import to_record

__all__ = [
    "ScheduledTaskRow", "ensure_scheduled_tasks_txn", "scheduled_tasks_txn",
    "record_task_run_txn",
]

#: Stored error texts are cut to this many characters.
_MAX_ERROR = 4000


@attrs.frozen
class ScheduledTaskRow:
    name: str
    next_run_after: float
    last_run_at: float | None
    last_status: str | None
    last_error: str | None


def scheduled_tasks_txn(conn: Connection) -> list[ScheduledTaskRow]:
    """Every task's row, by name."""
    rows = conn.execute(select(s.scheduled_tasks).order_by(s.scheduled_tasks.c.name)).all()
    return [to_record(ScheduledTaskRow, r) for r in rows]


def ensure_scheduled_tasks_txn(
    conn: Connection, first_runs: Sequence[tuple[str, float]],
) -> list[ScheduledTaskRow]:
    """
    Give each named task a row (with its first run) unless it has one
    already; an existing row is never moved, so a restart keeps its place.

    @param first_runs: C{(name, next_run_after)} for every known task.
    @return: every task's row after the insertions.
    """
    known = {r.name for r in scheduled_tasks_txn(conn)}
    missing = [dict(name=name, next_run_after=when) for name, when in first_runs if name not in known]
    if missing:
        # Another process (postal cron run) may add the same row meanwhile.
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(insert(s.scheduled_tasks).on_conflict_do_nothing(index_elements=["name"]), missing)
    return scheduled_tasks_txn(conn)


def record_task_run_txn(
    conn: Connection, name: str, ran_at: float, status: str, error: str | None,
    next_run_after: float | None,
) -> None:
    """
    Record a run's outcome; with C{next_run_after} also move the task's
    next run (a manual run from the CLI leaves the schedule alone).  The
    row must exist (L{ensure_scheduled_tasks_txn}).
    """
    values: dict[str, object] = dict(
        last_run_at=ran_at, last_status=status,
        last_error=None if error is None else error[:_MAX_ERROR],
    )
    if next_run_after is not None:
        values["next_run_after"] = next_run_after
    conn.execute(update(s.scheduled_tasks).where(s.scheduled_tasks.c.name == name).values(**values))

# -*- test-case-name: tests.cron.test_tasks -*-
"""
What a cron task is (L{ICronTask}), and the loop most of them share:
repeating one bounded batch transaction until the work is done.
"""

from __future__ import annotations

import abc

from typing import Any, Callable, ClassVar, Concatenate

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import Attribute, Interface

from postal.db.pool import TransactionPool
from postal.errors import PostalError

__all__ = ["ICronTask", "DatabaseTask", "TaskIncomplete", "repeat_batches", "DEFAULT_BATCH_SIZE"]

#: Rows per transaction: small enough that no table is locked for long.
DEFAULT_BATCH_SIZE = 500


class ICronTask(Interface):
    """One scheduled task of the cron role."""

    name: str = Attribute("Postal's name for the task, as C{postal cron run} takes it.")
    schedule: Any = Attribute("The L{postal.cron.schedules.ISchedule} it runs on.")

    def run() -> Deferred[str]:
        """
        Do the work once; fire with a one-line summary for logs and the
        CLI, or fail (the scheduler records the failure and carries on).
        """


class TaskIncomplete(PostalError):
    """A task did part of its work; some items failed and were logged."""


async def repeat_batches(
    pool: TransactionPool,
    name: str,
    limit: int,
    fn: Callable[Concatenate[Connection, ...], int],
    *args: Any,
) -> int:
    """
    Run C{fn(conn, *args, limit)} in its own transaction until it returns
    fewer than C{limit}; each returns how many rows it handled.

    @return: the rows handled in all.
    """
    total = 0
    while True:
        handled = await pool.run_in_transaction(name, fn, *args, limit)
        total += handled
        if handled < limit:
            return total


@attrs.define
class DatabaseTask(abc.ABC):
    """
    Base of the tasks that work through the database pool on a clock:
    subclasses set C{name} and C{schedule} and write C{_run}.
    """

    name: ClassVar[str]
    schedule: ClassVar[Any]

    _pool: TransactionPool
    _clock: IReactorTime
    _batch_size: int = DEFAULT_BATCH_SIZE

    def run(self) -> Deferred[str]:
        return Deferred.fromCoroutine(self._run())

    @abc.abstractmethod
    async def _run(self) -> str:
        """Do the task's work; return a one-line summary for the log."""

    def _now(self) -> float:
        return self._clock.seconds()

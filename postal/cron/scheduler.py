# -*- test-case-name: tests.cron.test_scheduler -*-
"""
The cron scheduler: while this process holds the C{cron} lease it runs
each task when its C{scheduled_tasks.next_run_after} has come, one task
at a time, and stores the task's next run and outcome.

A run's outcome and next run are written after the run, so a process that
dies mid-run leaves the task due and the next holder runs it again (every
task is idempotent); one that restarts after a run finds the next run in
the database and neither repeats nor skips it.  A failing task is logged,
counted and rescheduled like a successful one; the others carry on.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from prometheus_client import Counter, Histogram
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from postal.cron.task import ICronTask
from postal.db.pool import TransactionPool
from postal.db.scheduled_tasks import ScheduledTaskRow, ensure_scheduled_tasks_txn, record_task_run_txn

__all__ = ["CronScheduler", "TASK_RUNTIME", "TASK_FAILURES", "TASK_RUNS", "run_task_now"]

log = Logger()

TASK_RUNTIME = Histogram(
    "postal_cron_task_runtime", "Seconds one run of a scheduled task took.", ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
TASK_RUNS = Counter("postal_cron_task_runs_total", "Runs of a scheduled task.", ["task"])
TASK_FAILURES = Counter("postal_cron_task_failures_total", "Runs of a scheduled task that failed.", ["task"])


async def run_task_now(
    task: ICronTask, pool: TransactionPool, clock: IReactorTime, reschedule: bool,
) -> tuple[str, str | None]:
    """
    Run C{task} once, time it, record its outcome (and, with
    C{reschedule}, its next run) and never raise.

    @return: C{(status, summary or error text)}; status is C{ok} or C{error}.
    """
    started = clock.seconds()
    TASK_RUNS.labels(task.name).inc()
    try:
        summary = await task.run()
    except Exception as e:
        TASK_FAILURES.labels(task.name).inc()
        log.failure("Scheduled task {task} failed", task=task.name)
        status, text = "error", f"{type(e).__name__}: {e}"
    else:
        log.info("Scheduled task {task}: {summary}", task=task.name, summary=summary)
        status, text = "ok", summary
    finished = clock.seconds()
    TASK_RUNTIME.labels(task.name).observe(finished - started)
    next_run = task.schedule.next_after(finished) if reschedule else None
    try:
        await pool.run_in_transaction(
            "cron_record_task_run", record_task_run_txn, task.name, started, status,
            text if status == "error" else None, next_run,
        )
    except Exception:
        log.failure("Could not record the run of scheduled task {task}", task=task.name)
    return status, text


def first_runs(tasks: Sequence[ICronTask], now: float) -> list[tuple[str, float]]:
    """Each task's first run for a fresh C{scheduled_tasks} table."""
    return [(t.name, t.schedule.next_after(now)) for t in tasks]


@attrs.define(eq=False)
class CronScheduler:
    """
    Runs C{tasks} on C{clock} between L{start_running} and L{stop_running}
    (the lease's C{on_acquired} and C{on_lost}).  While running it checks
    again when the earliest task comes due, and at least every
    C{max_sleep} seconds (so runs moved by another process are seen).
    """

    _tasks: Sequence[ICronTask]
    _pool: TransactionPool
    _clock: IReactorTime
    _max_sleep: float = 60.0
    _min_sleep: float = 1.0
    _running: bool = attrs.field(default=False, init=False)
    _wakeup: IDelayedCall | None = attrs.field(default=None, init=False)
    _in_flight: Deferred[float] | None = attrs.field(default=None, init=False)

    @property
    def running(self) -> bool:
        return self._running

    def start_running(self) -> None:
        """Begin: check for due tasks now, then as they come due."""
        if self._running:
            return
        self._running = True
        log.info("Cron scheduler running {count} tasks", count=len(self._tasks))
        self._tick()

    def stop_running(self) -> Deferred[None]:
        """Stop starting tasks; fires when the task in progress (if any) ends."""
        self._running = False
        if self._wakeup is not None and self._wakeup.active():
            self._wakeup.cancel()
        self._wakeup = None
        if self._in_flight is None:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._in_flight.addBoth(lambda _: waiting.callback(None))
        return waiting

    def _tick(self) -> None:
        self._wakeup = None
        if not self._running or self._in_flight is not None:
            return
        self._in_flight = Deferred.fromCoroutine(self._run_due())
        self._in_flight.addBoth(self._tick_done)

    def _tick_done(self, delay: object) -> None:
        self._in_flight = None
        if isinstance(delay, Failure):
            log.failure("Cron scheduler tick failed", delay)
        if not self._running:
            return
        sleep = delay if isinstance(delay, float) else self._max_sleep
        self._wakeup = self._clock.callLater(sleep, self._tick)

    async def _run_due(self) -> float:
        """Run every due task; return how long to sleep before looking again."""
        try:
            rows = await self._rows()
            for task in self._tasks:
                if not self._running:
                    break
                row = rows.get(task.name)
                if row is not None and row.next_run_after <= self._clock.seconds():
                    await run_task_now(task, self._pool, self._clock, reschedule=True)
            rows = await self._rows()
        except Exception:
            log.failure("Cron scheduler could not read the scheduled tasks")
            return self._max_sleep
        return self._sleep_until(rows)

    async def _rows(self) -> dict[str, ScheduledTaskRow]:
        rows = await self._pool.run_in_transaction(
            "cron_scheduled_tasks", ensure_scheduled_tasks_txn,
            first_runs(self._tasks, self._clock.seconds()),
        )
        return {r.name: r for r in rows}

    def _sleep_until(self, rows: dict[str, ScheduledTaskRow]) -> float:
        mine = [rows[t.name].next_run_after for t in self._tasks if t.name in rows]
        if not mine:
            return self._max_sleep
        return float(min(self._max_sleep, max(self._min_sleep, min(mine) - self._clock.seconds())))

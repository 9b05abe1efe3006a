# -*- test-case-name: tests.cron.test_scheduler -*-
"""
The cron scheduler under L{task.Clock} with a synchronous database pool:
when tasks run, what a restart does, failures, and the lease handing the
schedule from a dead process to its standby.
"""

from __future__ import annotations

from typing import Any, Callable, Concatenate

import attrs
from prometheus_client import REGISTRY
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from postal.cron.scheduler import CronScheduler, run_task_now
from postal.cron.schedules import EveryMinute, HourlyAt, ISchedule
from postal.cron.service import cron_service
from postal.cron.task import ICronTask
from postal.db.pool import SynchronousDatabasePool, TransactionPool
from postal.db.scheduled_tasks import ScheduledTaskRow, scheduled_tasks_txn
from tests.cron.fixtures import NOW
from tests.dbhelpers import sqlite_engine


@implementer(ICronTask)
@attrs.define
class RecordingTask:
    """An L{ICronTask} that records when it runs; it may fail or stay busy."""

    name: str
    schedule: ISchedule
    clock: Clock
    runs: list[float] = attrs.Factory(list)
    error: Exception | None = None
    busy: Deferred[str] | None = None

    def run(self) -> Deferred[str]:
        self.runs.append(self.clock.seconds())
        if self.error is not None:
            return fail(self.error)
        if self.busy is not None:
            return self.busy
        return succeed("done")


@attrs.define
class KillablePool(TransactionPool):
    """A pool that stops answering once killed, as a dead process's would."""

    pool: TransactionPool
    dead: bool = False

    def run_in_transaction(self, name: str, fn: Callable[Concatenate[Connection, ...], Any],
                           *args: Any, **kwargs: Any) -> Deferred[Any]:
        if self.dead:
            return fail(ConnectionError("process is dead"))
        return self.pool.run_in_transaction(name, fn, *args, **kwargs)

    @property
    def dialect(self) -> str:
        return self.pool.dialect


class SchedulerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)  # 10:30:00 UTC
        self.pool = SynchronousDatabasePool(sqlite_engine(self))
        self.minutely = RecordingTask("minutely", EveryMinute(), self.clock)
        self.hourly = RecordingTask("hourly", HourlyAt(45), self.clock)
        self.tasks = [self.minutely, self.hourly]

    def scheduler(self) -> CronScheduler:
        scheduler = CronScheduler(self.tasks, self.pool, self.clock)
        self.addCleanup(scheduler.stop_running)
        return scheduler

    def rows(self) -> dict[str, ScheduledTaskRow]:
        return {r.name: r for r in self.pool.call("rows", scheduled_tasks_txn)}

    def test_recording_task_provides_interface(self) -> None:
        """The test task is a real L{ICronTask}."""
        self.assertTrue(verifyObject(ICronTask, self.minutely))

    def test_first_run_at_next_scheduled_time(self) -> None:
        """On a fresh table nothing runs at start; each task first runs at its next slot."""
        self.scheduler().start_running()
        self.assertEqual(self.minutely.runs, [])
        self.assertEqual(self.rows()["hourly"].next_run_after, NOW + 15 * 60)
        self.clock.advance(60)
        self.assertEqual(self.minutely.runs, [NOW + 60])
        self.clock.pump([60] * 14)
        self.assertEqual(self.hourly.runs, [NOW + 15 * 60])
        self.assertEqual(len(self.minutely.runs), 15)

    def test_run_recorded(self) -> None:
        """After a run the table holds its time, status and the next run."""
        self.scheduler().start_running()
        self.clock.advance(60)
        row = self.rows()["minutely"]
        self.assertEqual((row.last_run_at, row.last_status, row.last_error, row.next_run_after),
                         (NOW + 60, "ok", None, NOW + 120))

    def test_restart_neither_repeats_nor_skips(self) -> None:
        """
        A restarted scheduler does not run again what ran before it stopped,
        and runs once what came due while it was down.
        """
        first = self.scheduler()
        first.start_running()
        self.clock.advance(60)
        first.stop_running()
        second = self.scheduler()
        second.start_running()
        self.assertEqual(self.minutely.runs, [NOW + 60])
        second.stop_running()
        self.clock.advance(30 * 60)  # down through 10:45 and many minutes
        self.assertEqual(self.hourly.runs, [])
        self.scheduler().start_running()
        self.assertEqual(self.hourly.runs, [NOW + 31 * 60])
        self.assertEqual(self.minutely.runs, [NOW + 60, NOW + 31 * 60])
        self.assertEqual(self.rows()["hourly"].next_run_after, NOW + 75 * 60)

    def test_failing_task_does_not_stop_others(self) -> None:
        """A failing task is recorded and counted; the other tasks still run on time."""
        before = REGISTRY.get_sample_value("postal_cron_task_failures_total", {"task": "minutely"}) or 0
        self.minutely.error = RuntimeError("boom")
        self.scheduler().start_running()
        self.clock.pump([60] * 15)
        self.assertEqual(len(self.minutely.runs), 15)
        self.assertEqual(self.hourly.runs, [NOW + 15 * 60])
        row = self.rows()["minutely"]
        self.assertEqual((row.last_status, row.last_error), ("error", "RuntimeError: boom"))
        self.assertEqual(REGISTRY.get_sample_value("postal_cron_task_failures_total", {"task": "minutely"}),
                         before + 15)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 15)

    def test_failure_logged_with_task_name(self) -> None:
        """A failed run is logged as a failure event naming the task."""
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.hourly.error = ValueError("bad")
        self.successResultOf(Deferred.fromCoroutine(
            run_task_now(self.hourly, self.pool, self.clock, reschedule=True)))
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual([(e["task"], e["log_failure"].type) for e in failures], [("hourly", ValueError)])
        self.flushLoggedErrors(ValueError)

    def test_runtime_observed(self) -> None:
        """Each run is observed in the runtime histogram of its task."""
        labels = {"task": "minutely"}
        before = REGISTRY.get_sample_value("postal_cron_task_runtime_count", labels) or 0
        self.scheduler().start_running()
        self.clock.pump([60] * 3)
        self.assertEqual(REGISTRY.get_sample_value("postal_cron_task_runtime_count", labels), before + 3)

    def test_nothing_runs_unless_running(self) -> None:
        """A scheduler that was never started (no lease) runs nothing."""
        self.scheduler()
        self.clock.pump([60] * 20)
        self.assertEqual(self.minutely.runs, [])

    def test_stop_waits_for_task_in_progress(self) -> None:
        """Stopping fires only when the task in progress ends, and starts no further task."""
        self.minutely.busy = Deferred()
        scheduler = self.scheduler()
        scheduler.start_running()
        self.clock.advance(60)
        stopped = scheduler.stop_running()
        self.assertNoResult(stopped)
        self.minutely.busy.callback("done")
        self.successResultOf(stopped)
        self.clock.pump([60] * 20)
        self.assertEqual(self.minutely.runs, [NOW + 60])

    def test_run_now_keeps_schedule(self) -> None:
        """A manual run records its outcome without moving the next run."""
        self.scheduler().start_running()
        self.successResultOf(Deferred.fromCoroutine(
            run_task_now(self.hourly, self.pool, self.clock, reschedule=False)))
        row = self.rows()["hourly"]
        self.assertEqual((row.last_run_at, row.last_status, row.next_run_after), (NOW, "ok", NOW + 15 * 60))


class LeaseTakeoverTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.pool = SynchronousDatabasePool(sqlite_engine(self))
        self.task = RecordingTask("minutely", EveryMinute(), self.clock)

    def test_standby_takes_over_within_one_period(self) -> None:
        """
        Only the lease holder runs tasks; when it dies the standby runs them
        within one lease period, and no run is repeated or skipped.
        """
        period = 30.0
        active_pool = KillablePool(self.pool)
        active = cron_service([self.task], active_pool, self.clock, period, "active")
        active.startService()
        standby = cron_service([self.task], self.pool, self.clock, period, "standby")
        standby.startService()
        self.addCleanup(standby.stopService)
        self.assertTrue(active.scheduler.running)
        self.assertFalse(standby.scheduler.running)
        self.clock.pump([10] * 6)  # 10:31:00: the active one ran the task
        self.assertEqual(self.task.runs, [NOW + 60])
        active_pool.dead = True
        died = self.clock.seconds()
        took_over = None
        for _ in range(int(period)):
            self.clock.advance(1)
            if standby.scheduler.running and took_over is None:
                took_over = self.clock.seconds()
        self.assertIsNotNone(took_over)
        assert took_over is not None
        self.assertLessEqual(took_over - died, period)
        self.assertFalse(active.scheduler.running)
        self.clock.pump([10] * 12)
        runs = [t - NOW for t in self.task.runs]
        self.assertGreaterEqual(len(runs), 3)
        self.assertEqual(runs, [60.0 * i for i in range(1, len(runs) + 1)])
        self.flushLoggedErrors(ConnectionError)
        active_pool.dead = False
        active.stopService()

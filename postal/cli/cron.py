# -*- test-case-name: tests.cron.test_cli -*-
"""
C{postal cron list} (each scheduled task's last and next run, and which
process holds the cron lease) and
C{postal cron run TASK} (run one task now, whether or not a cron process
is running; the task's schedule is left alone).
"""

from __future__ import annotations

import argparse
from typing import Any

from twisted.internet.defer import Deferred

from postal.cli._context import CommandContext
from postal.clock import utc_datetime
from postal.cron.scheduler import first_runs, run_task_now
from postal.cron.service import TASK_NAMES, all_tasks, dns_checkers, task_named
from postal.cron.task import ICronTask
from postal.db.leases import get_lease_txn
from postal.db.scheduled_tasks import ensure_scheduled_tasks_txn, scheduled_tasks_txn
from postal.errors import PostalError

__all__ = ["register", "cron_list", "cron_run", "CronTaskFailed"]


class CronTaskFailed(PostalError):
    """A task run from the command line failed; the message says how."""


def _tasks(ctx: CommandContext) -> list[ICronTask]:
    check_domain, check_track_domain = dns_checkers(
        lambda: ctx.runtime.resolver_for(ctx.config), ctx.config.dns)
    return all_tasks(ctx.pool, ctx.runtime.clock, check_domain, ctx.config.cron.batch_size, check_track_domain)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return utc_datetime(timestamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def cron_list(ctx: CommandContext) -> None:
    tasks = sorted(_tasks(ctx), key=lambda t: t.name)
    rows = {r.name: r for r in ctx.pool.call("scheduled_tasks", scheduled_tasks_txn)}
    entries: list[dict[str, Any]] = []
    for task in tasks:
        row = rows.get(task.name)
        entries.append({
            "name": task.name, "schedule": task.schedule.describe(),
            "last_run_at": row.last_run_at if row else None,
            "last_status": row.last_status if row else None,
            "last_error": row.last_error if row else None,
            "next_run_after": row.next_run_after if row else task.schedule.next_after(ctx.now()),
        })
    lease = ctx.pool.call("cron_lease", get_lease_txn, "cron")
    if lease is not None and lease.expires_at > ctx.now():
        holder: dict[str, Any] | None = {"holder": lease.holder, "expires_at": lease.expires_at}
        lines = [f"Active cron process: {lease.holder} (lease until {_when(lease.expires_at)})"]
    else:
        holder, lines = None, ["No cron process holds the lease."]
    lines.append(f"{'TASK':<27} {'SCHEDULE':<21} {'LAST RUN':<24} {'STATUS':<7} NEXT RUN")
    for e in entries:
        lines.append(f"{e['name']:<27} {e['schedule']:<21} {_when(e['last_run_at']):<24} "
                     f"{e['last_status'] or '-':<7} {_when(e['next_run_after'])}")
        if e["last_error"]:
            lines.append(f"  last error: {e['last_error']}")
    ctx.emit({"lease": holder, "tasks": entries}, *lines)


def cron_run(ctx: CommandContext) -> None:
    try:
        task = task_named(_tasks(ctx), ctx.args.task)
    except KeyError as e:
        raise CronTaskFailed(e.args[0]) from None
    clock = ctx.runtime.clock
    ctx.pool.call("cron_scheduled_tasks", ensure_scheduled_tasks_txn, first_runs([task], ctx.now()))
    status, text = ctx.runtime.wait(
        lambda: Deferred.fromCoroutine(run_task_now(task, ctx.pool, clock, reschedule=False)))
    if status != "ok":
        raise CronTaskFailed(f"task {task.name} failed: {text}")
    ctx.emit({"task": task.name, "status": status, "summary": text}, f"{task.name}: {text}")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    cron = commands.add_parser("cron", help="scheduled tasks").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    listing = cron.add_parser("list", parents=[common], help="show each task's last and next run")
    listing.set_defaults(handler=cron_list)
    run = cron.add_parser("run", parents=[common], help="run one task now")
    run.add_argument("task", metavar="TASK", choices=TASK_NAMES, help=", ".join(TASK_NAMES))
    run.set_defaults(handler=cron_run)

# -*- test-case-name: tests.supervisor.test_cli -*-
"""
C{postal start [--daemon]}, C{postal stop}, C{postal restart [ROLE]},
C{postal status} and C{postal logs ROLE [-f]}: the supervisor
(L{postal.tap.supervisor}) from the command line.

C{start} checks the plan first (roles, ports, a supervisor already
running), so a taken port is one clear line before anything starts; then it
becomes C{twistd -n postal-supervisor} (foreground), or starts it as a
daemon and waits until it answers on its control socket.  The other verbs
talk to the running supervisor over that socket, or signal the pid in
C{run/supervisor.pid}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Callable

from twisted.logger import eventFromJSON, formatEventAsClassicLogText

from postal.cli._context import CommandContext
from postal.config import PostalConfig
from postal.errors import PostalError
from postal.logs import log_path
from postal.supervisor.control import SupervisorNotRunning, request, socket_in_use
from postal.supervisor.plan import ROLES, control_socket_path, make_plan, pid_file_path, twistd_command
from postal.supervisor.sockets import PortUnavailable, check_ports

__all__ = ["register", "start", "stop", "restart", "status", "logs", "SupervisorError"]

#: Seconds C{start --daemon} waits for the control socket, and C{stop} for the exit.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
_POLL = 0.1


class SupervisorError(PostalError):
    """A supervisor command could not do what was asked; the message says why."""


def _not_running(config: PostalConfig) -> SupervisorError:
    return SupervisorError(f"the supervisor is not running (no answer on {control_socket_path(config)})")


def _ask(config: PostalConfig, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    try:
        answer = request(control_socket_path(config), message, timeout)
    except SupervisorNotRunning:
        raise _not_running(config) from None
    if "error" in answer:
        raise SupervisorError(str(answer["error"]))
    return answer


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    for _ in range(int(timeout / _POLL)):
        if condition():
            return True
        time.sleep(_POLL)
    return condition()


def check_can_start(config: PostalConfig) -> None:
    """Everything C{start} can find wrong before it starts anything."""
    from postal.tap.supervisor import available_roles

    if socket_in_use(control_socket_path(config)):
        raise SupervisorError("a supervisor for this installation is already running")
    plan = make_plan(config, available_roles())
    if not plan.children:
        raise SupervisorError("no role to run (every processes.<role> is 0 or no role plugin is installed)")
    try:
        check_ports(plan.ports)
    except PortUnavailable as e:
        raise SupervisorError(f"cannot start: {e}") from None


def _twistd_arguments(config: PostalConfig, daemon: bool) -> list[str]:
    config_path = config.source or os.path.join(config.root, "postal.yml")
    mode = ["--logger=postal.supervisor.childlog.warnings_to_stdout"] if daemon else ["--nodaemon"]
    return [*twistd_command(), *mode, f"--pidfile={pid_file_path(config)}",
            "postal-supervisor", "--config", config_path]


def start(ctx: CommandContext) -> None:
    config = ctx.config
    check_can_start(config)
    os.makedirs(os.path.dirname(pid_file_path(config)), exist_ok=True)
    arguments = _twistd_arguments(config, ctx.args.daemon)
    if not ctx.args.daemon:
        ctx.stdout.flush()
        os.execv(arguments[0], arguments)
    finished = subprocess.run(arguments, stdin=subprocess.DEVNULL, check=False)
    if finished.returncode != 0:
        raise SupervisorError(f"twistd exited with status {finished.returncode}")
    path = control_socket_path(config)
    if not _wait_for(lambda: socket_in_use(path), START_TIMEOUT):
        raise SupervisorError(f"the supervisor did not come up; see {log_path('supervisor', config)}")
    pid = _ask(config, {"command": "status"})["supervisor"]["pid"]
    ctx.emit({"started": True, "pid": pid}, f"postal supervisor started (pid {pid})")


def _supervisor_pid(config: PostalConfig) -> int:
    try:
        with open(pid_file_path(config), encoding="ascii") as handle:
            return int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        pass
    pid = _ask(config, {"command": "status"})["supervisor"]["pid"]
    return int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(ctx: CommandContext) -> None:
    pid = _supervisor_pid(ctx.config)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise _not_running(ctx.config) from None
    if not _wait_for(lambda: not _alive(pid), STOP_TIMEOUT):
        raise SupervisorError(f"the supervisor (pid {pid}) has not stopped after {STOP_TIMEOUT:.0f}s")
    ctx.emit({"stopped": True, "pid": pid}, f"postal supervisor stopped (pid {pid})")


def restart(ctx: CommandContext) -> None:
    # A rolling restart waits for each process in turn (up to its stop time plus start-up).
    answer = _ask(ctx.config, {"command": "restart", "role": ctx.args.role}, timeout=600.0)
    names = answer["restarted"]
    ctx.emit({"restarted": names}, f"restarted {', '.join(names)}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _health_text(health: dict[str, Any]) -> str:
    if "status" in health:
        return f"{health['status']} {health.get('body', '')}".strip()
    if "error" in health:
        return f"error: {health['error']}"
    return "-" if health.get("url") else "n/a"


def status_lines(answer: dict[str, Any]) -> list[str]:
    """The status as a table (what C{postal status} prints)."""
    sup = answer["supervisor"]
    lines = [f"supervisor pid {sup['pid']}, up {_duration(sup['uptime'])}, config {sup['config']}",
             f"{'NAME':<12} {'PID':>7} {'UPTIME':>8} {'RESTARTS':>8}  HEALTH"]
    for child in answer["children"]:
        pid = str(child["pid"]) if child["running"] else "down"
        lines.append(f"{child['name']:<12} {pid:>7} {_duration(child['uptime']):>8} "
                     f"{child['restarts']:>8}  {_health_text(child['health'])}")
    if answer.get("skipped_roles"):
        lines.append(f"not installed: {', '.join(answer['skipped_roles'])}")
    return lines


def status(ctx: CommandContext) -> None:
    answer = _ask(ctx.config, {"command": "status"})
    ctx.emit(answer, *status_lines(answer))


_LOG_NAME = re.compile(r"^[a-z]+(-[0-9]+)?$")


def _readable(line: str) -> str:
    try:
        return (formatEventAsClassicLogText(eventFromJSON(line)) or "").rstrip("\n")
    except ValueError:
        return line.rstrip("\n")


def logs(ctx: CommandContext) -> None:
    name = ctx.args.role
    if not _LOG_NAME.match(name):
        raise SupervisorError(f"{name!r} is not a role or process name")
    path = log_path(name, ctx.config)
    if not os.path.exists(path):
        raise SupervisorError(f"{path}: no such log yet")
    show = (lambda line: line.rstrip("\n")) if ctx.json else _readable
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle.readlines()[-ctx.args.lines:] if ctx.args.lines else handle.readlines():
            ctx.stdout.write(show(line) + "\n")
        ctx.stdout.flush()
        if ctx.args.follow:
            _follow(handle, path, show, ctx)


def _follow(handle: Any, path: str, show: Callable[[str], str], ctx: CommandContext) -> None:
    """Print lines as they are appended, reopening the file when it is rotated away."""
    identity = os.fstat(handle.fileno()).st_ino
    pending = ""
    try:
        while True:
            chunk = handle.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split("\n")
                for line in complete:
                    ctx.stdout.write(show(line) + "\n")
                ctx.stdout.flush()
                continue
            time.sleep(0.25)
            try:
                if os.stat(path).st_ino != identity:
                    handle.close()
                    handle = open(path, encoding="utf-8", errors="replace")
                    identity = os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.close()


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    begin = commands.add_parser("start", parents=[common], help="start the supervisor and every role")
    begin.add_argument("--daemon", action="store_true", help="detach (pid file in run/supervisor.pid)")
    begin.set_defaults(handler=start)
    end = commands.add_parser("stop", parents=[common], help="stop the supervisor and every role")
    end.set_defaults(handler=stop)
    again = commands.add_parser("restart", parents=[common], help="restart one role's processes, or all")
    again.add_argument("role", metavar="ROLE", nargs="?", choices=ROLES, help=", ".join(ROLES))
    again.set_defaults(handler=restart)
    state = commands.add_parser("status", parents=[common], help="each process: pid, uptime, restarts, health")
    state.set_defaults(handler=status)
    show = commands.add_parser("logs", parents=[common], help="show a role's log")
    show.add_argument("role", metavar="ROLE",
                      help="a role, supervisor, or a process name such as worker-2 (its captured output)")
    show.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    show.add_argument("-n", "--lines", type=int, default=50, metavar="N",
                      help="how many lines to show first (0: all; default 50)")
    show.set_defaults(handler=logs)

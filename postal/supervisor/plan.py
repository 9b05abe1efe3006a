# -*- test-case-name: tests.supervisor.test_plan -*-
"""
What the supervisor will run, decided from the configuration alone: one
L{ChildSpec} per process (its name, command line, environment overrides,
health URL and the listening sockets it inherits), and every TCP port the
plan will bind, so the whole plan can be checked before anything starts.

Nothing here touches the reactor or the network.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

import attrs

from postal.config import PostalConfig

__all__ = [
    "ROLES", "SINGLE_ACTIVE", "HEALTH_PORT_STEP", "RestartPolicy", "Listener", "PortUse",
    "ChildSpec", "SupervisorPlan", "process_counts", "make_plan", "twistd_command",
    "run_directory", "pid_file_path", "control_socket_path",
]

#: Roles in start order (as in postal.tac).
ROLES = ("web", "smtp", "worker", "cron", "requeuer", "fast")

#: Roles of which one process is active per installation (they hold a
#: database lease); running more on one host only adds idle standbys.
SINGLE_ACTIVE = frozenset({"cron", "requeuer"})

#: Instance I{n} of a role answers C{/health} on the role's health port
#: plus C{HEALTH_PORT_STEP * (n - 1)}: 9090, 9190, 9290 for three workers.
HEALTH_PORT_STEP = 100

#: The observer factory children give twistd's C{--logger}: warnings and
#: errors as text on stdout (captured by the supervisor); everything else
#: goes to the role's JSON log file only, so output never floods the pipe.
CHILD_LOGGER = "postal.supervisor.childlog.warnings_to_stdout"


@attrs.frozen
class RestartPolicy:
    """
    L{twisted.runner.procmon.ProcessMonitor}'s knobs.  A child that dies
    within C{threshold} seconds of starting is restarted after a delay that
    starts at C{min_delay} and doubles per quick death up to C{max_delay};
    one that ran longer is restarted at once.  On stop a child gets
    C{kill_time} seconds after SIGTERM to finish in-flight work before
    SIGKILL.
    """

    threshold: float = 5.0
    min_delay: float = 1.0
    max_delay: float = 60.0
    kill_time: float = 20.0


@attrs.frozen
class Listener:
    """A public listening socket shared by every process of a role."""

    #: The C{LISTEN_FDNAMES} name the role looks for (C{smtp}, C{smtps}, C{web}, ...).
    name: str
    interface: str
    port: int
    key: str


@attrs.frozen
class PortUse:
    """A TCP port the plan binds, and the config key that chose it."""

    interface: str
    port: int
    key: str
    shared: bool = False


@attrs.frozen
class ChildSpec:
    """One supervised process."""

    name: str
    role: str
    instance: int
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    health_url: str | None
    listeners: tuple[Listener, ...] = ()


@attrs.frozen
class SupervisorPlan:
    children: tuple[ChildSpec, ...]
    ports: tuple[PortUse, ...]
    shared: tuple[Listener, ...]
    skipped: tuple[str, ...]
    policy: RestartPolicy = RestartPolicy()

    def children_of(self, role: str) -> tuple[ChildSpec, ...]:
        return tuple(child for child in self.children if child.role == role)


def run_directory(config: PostalConfig) -> str:
    """C{<config dir>/run}: the supervisor's pid file and control socket."""
    return os.path.join(config.root, "run")


def pid_file_path(config: PostalConfig) -> str:
    return os.path.join(run_directory(config), "supervisor.pid")


def control_socket_path(config: PostalConfig) -> str:
    return os.path.join(run_directory(config), "supervisor.sock")


def process_counts(config: PostalConfig, available: Iterable[str]) -> dict[str, int]:
    """
    How many processes of each role to run: C{processes.<role>} for the
    roles that exist (0 turns a role off), single-active roles capped at 1.
    """
    present = set(available)
    counts = {}
    for role in ROLES:
        if role not in present:
            continue
        count = getattr(config.processes, role)
        counts[role] = min(count, 1) if role in SINGLE_ACTIVE else count
    return {role: count for role, count in counts.items() if count > 0}


def twistd_command() -> list[str]:
    """The venv's C{twistd} beside this interpreter, else twistd run by this interpreter."""
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [sys.executable, script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _health_port(config: PostalConfig, role: str) -> tuple[str, int] | None:
    """The role's health port key and value (web answers on its own port)."""
    group = {"smtp": "smtp_server"}.get(role, role)
    if role == "web":
        return None
    return f"{group}.health_port", getattr(config, group).health_port


def _public_listeners(config: PostalConfig, role: str) -> list[Listener]:
    if role == "web":
        web = config.web_server
        found = [Listener("web", web.default_bind_address, web.default_port, "web_server.default_port")]
        if web.tls_enabled and web.tls_port:
            found.append(Listener("web-tls", web.default_bind_address, web.tls_port, "web_server.tls_port"))
        return found
    if role == "smtp":
        smtp = config.smtp_server
        found = [Listener("smtp", smtp.default_bind_address, smtp.default_port, "smtp_server.default_port")]
        if smtp.tls_enabled and smtp.tls_port:
            found.append(Listener("smtps", smtp.default_bind_address, smtp.tls_port, "smtp_server.tls_port"))
        return found
    if role == "fast":
        fast = config.fast
        return [Listener("fast-http", fast.bind_address, fast.http_port, "fast.http_port"),
                Listener("fast-https", fast.bind_address, fast.https_port, "fast.https_port")]
    return []


def _child(config: PostalConfig, role: str, instance: int, count: int,
           shared: list[Listener]) -> tuple[ChildSpec, list[PortUse]]:
    name = role if count == 1 else f"{role}-{instance}"
    config_path = config.source or os.path.join(config.root, "postal.yml")
    args = (*twistd_command(), "--nodaemon", "--pidfile=", f"--logger={CHILD_LOGGER}",
            f"postal-{role}", "--config", config_path)
    env = [("POSTAL_CONFIG_FILE_PATH", config_path)]
    ports = []
    health = _health_port(config, role)
    url = None
    if health is None:
        web = config.web_server
        host = "127.0.0.1" if web.default_bind_address in ("::", "0.0.0.0") else web.default_bind_address
        url = f"http://{_url_host(host)}:{web.default_port}/health"
    elif health[1]:
        key, base = health
        port = base + HEALTH_PORT_STEP * (instance - 1)
        if instance > 1:
            env.append((key.replace(".", "_").upper(), str(port)))
        ports.append(PortUse("127.0.0.1", port, key))
        url = f"http://127.0.0.1:{port}/health"
    if count == 1:
        ports.extend(PortUse(l.interface, l.port, l.key) for l in _public_listeners(config, role))
    spec = ChildSpec(name=name, role=role, instance=instance, args=args, env=tuple(env),
                     health_url=url, listeners=tuple(shared))
    return spec, ports


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def make_plan(config: PostalConfig, available: Iterable[str],
              policy: RestartPolicy = RestartPolicy()) -> SupervisorPlan:
    """
    The processes for C{config}, given the roles that exist.  A role run
    as more than one process shares its public listeners: the supervisor
    binds them once and every process of the role inherits them (see
    L{postal.supervisor.inherited}); a role run once binds its own.
    """
    available = list(available)
    counts = process_counts(config, available)
    children: list[ChildSpec] = []
    ports: list[PortUse] = []
    shared: list[Listener] = []
    for role, count in counts.items():
        role_shared = _public_listeners(config, role) if count > 1 else []
        shared.extend(role_shared)
        ports.extend(PortUse(l.interface, l.port, l.key, shared=True) for l in role_shared)
        for instance in range(1, count + 1):
            spec, used = _child(config, role, instance, count, role_shared)
            children.append(spec)
            ports.extend(used)
    skipped = tuple(role for role in ROLES if role not in available)
    return SupervisorPlan(children=tuple(children), ports=tuple(ports), shared=tuple(shared),
                          skipped=skipped, policy=policy)

# -*- test-case-name: tests.supervisor.test_service -*-
"""
The supervisor's service tree: C{postal-supervisor} (which writes
C{log/supervisor.log}) holding the control socket listener and the
L{RoleMonitor}.  Children start after the control socket is listening and
stop (each waited for) before it closes.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Mapping

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.logger import Logger

from postal.config import PostalConfig
from postal.logs import LogFileService, log_path, observer_for
from postal.supervisor.control import Commands, control_factory
from postal.supervisor.monitor import RoleMonitor
from postal.supervisor.plan import ROLES, SupervisorPlan
from postal.supervisor.status import HealthProbe, collect_status, http_probe

__all__ = ["supervisor_service", "log_directory"]

log = Logger()


def log_directory(config: PostalConfig) -> str:
    return os.path.dirname(log_path("supervisor", config))


class _Announce(MultiService):
    """Logs what is supervised once the tree starts."""

    def __init__(self, plan: SupervisorPlan) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._plan = plan

    def startService(self) -> None:
        log.info("Supervising {children}; roles without a plugin: {skipped}",
                 children=", ".join(child.name for child in self._plan.children),
                 skipped=", ".join(self._plan.skipped) or "none")
        super().startService()  # type: ignore[no-untyped-call]


def _commands(monitor: RoleMonitor, reactor: Any, probe: HealthProbe,
              config: PostalConfig) -> Commands:
    started_at = float(reactor.seconds())

    async def status(message: dict[str, Any]) -> dict[str, Any]:
        return await collect_status(monitor, probe, started_at, float(reactor.seconds()),
                                    config.source)

    async def restart(message: dict[str, Any]) -> dict[str, Any]:
        role = message.get("role")
        if role is not None and role not in ROLES:
            return {"error": f"unknown role {role!r} (one of {', '.join(ROLES)})"}
        if role is not None and not monitor.plan.children_of(role):
            return {"error": f"the supervisor runs no {role} process"}
        log.info("Restarting {role}", role=role or "every role")
        return {"restarted": await monitor.restart_role(role)}

    return {"status": status, "restart": restart}


def supervisor_service(config: PostalConfig, plan: SupervisorPlan, shared: Mapping[str, socket.socket],
                       reactor: Any, control_path: str, environ: Mapping[str, str] | None = None,
                       probe: HealthProbe | None = None) -> MultiService:
    """The whole tree, unstarted; C{shared} are the already-bound shared listeners."""
    top = LogFileService(observer_for("supervisor", config))
    top.setName("postal-supervisor")  # type: ignore[no-untyped-call]
    announce = _Announce(plan)
    announce.setServiceParent(top)  # type: ignore[no-untyped-call]
    monitor = RoleMonitor(reactor, plan, shared, log_directory(config), environ)
    commands = _commands(monitor, reactor, probe or http_probe(reactor), config)
    control = StreamServerEndpointService(
        UNIXServerEndpoint(reactor, control_path, mode=0o600), control_factory(commands))
    control.setName("control")  # type: ignore[no-untyped-call]
    control.setServiceParent(announce)  # type: ignore[no-untyped-call]
    monitor.setName("children")  # type: ignore[no-untyped-call]
    monitor.setServiceParent(announce)  # type: ignore[no-untyped-call]
    return top

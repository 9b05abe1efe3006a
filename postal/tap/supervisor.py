# -*- test-case-name: tests.supervisor.test_tap -*-
"""
The C{postal-supervisor} role (also C{postal start}): every configured role
as its own child process on this host.  Everything that can be wrong (the
configuration, a port in use, another supervisor on the same installation)
is reported here, before any child starts.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import getPlugins

from postal.config import PostalConfig
from postal.supervisor.control import MAX_SOCKET_PATH, socket_in_use
from postal.supervisor.plan import SupervisorPlan, control_socket_path, make_plan, run_directory
from postal.supervisor.service import supervisor_service
from postal.supervisor.sockets import PortUnavailable, bind_shared, check_ports
from postal.tap.common import RoleOptions, load_config_for

__all__ = ["Options", "makeService", "available_roles", "prepare"]


class Options(RoleOptions):
    """C{twistd postal-supervisor --config PATH}."""


class CannotStart(Exception):
    """The supervisor must not start; the message says why."""


def available_roles() -> list[str]:
    """The roles with a twistd plugin (C{postal-<role>}) installed."""
    import twisted.plugins

    names = {maker.tapname for maker in getPlugins(IServiceMaker, twisted.plugins)}
    return [name[len("postal-"):] for name in names
            if name.startswith("postal-") and name != "postal-supervisor"]


def _check_control_socket(path: str) -> None:
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise CannotStart(f"{path}: path too long for a UNIX socket; move the configuration "
                          "to a shorter folder")
    if socket_in_use(path):
        raise CannotStart(f"a supervisor for this installation is already running ({path})")
    if os.path.exists(path):
        os.unlink(path)  # left behind by a supervisor that was killed


def prepare(config: PostalConfig, roles: list[str]) -> tuple[SupervisorPlan, dict[str, Any], str]:
    """
    The plan, its shared listeners (bound) and the control socket path.

    @raise CannotStart: nothing to run, a port is taken, or another
        supervisor runs this installation.
    """
    plan = make_plan(config, roles)
    if not plan.children:
        raise CannotStart("no role to run (every processes.<role> is 0 or no role plugin is installed)")
    os.makedirs(run_directory(config), exist_ok=True)
    path = control_socket_path(config)
    _check_control_socket(path)
    try:
        check_ports([use for use in plan.ports if not use.shared])
        shared = bind_shared(plan.shared)
    except PortUnavailable as e:
        raise CannotStart(str(e)) from None
    return plan, dict(shared), path


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = load_config_for(options)
    try:
        plan, shared, path = prepare(config, available_roles())
    except CannotStart as e:
        sys.stderr.write(f"postal: cannot start: {e}\n")
        raise SystemExit(1) from None
    return supervisor_service(config, plan, shared, reactor, path)

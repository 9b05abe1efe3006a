# -*- test-case-name: tests.test_tac -*-
"""
Every role in one process, for C{postal.tac}: one service tree, one
database pool, one health site.

The role hook (every C{postal.tap.<role>} module follows it)::

    def build(config: PostalConfig, reactor: Any, pool: DatabasePool,
              notifier: IWakeup | None = None) -> IService:
        '''The role's own services (listeners, loops, lease), unstarted.'''

C{notifier} is optional: roles that commit queue rows (smtp, web) call its
C{wake()} after each commit, and roles that claim them (worker, requeuer)
subscribe to it; this module passes one shared L{Notifier} to every role
whose C{build} takes it, so in one process a message is claimed as soon as
it is committed, without polling.

    def makeService(options: Options) -> IService:
        config = load_config_for(options)
        base = make_role_base("<role>", config, reactor, config.<group>.health_port)
        build(config, reactor, base.pool).setServiceParent(base.service)
        return base.service

C{build} wires only what is the role's own; the database pool, the health
listener and the log file come from the caller, so the twistd plugin
(L{postal.tap.common.make_role_base}) and this module share them the same
way.  C{build} may return a service with any name or none: this module
names it after the role, so the tree reads C{postal-allinone} -> C{database},
C{health}, C{web}, C{smtp}, ...  A role that needs to run only once per
installation puts its own L{postal.lease.LeaseService} in what it returns.

Roles are composed in L{ROLES} order and a role whose module does not exist
yet, or has no C{build}, is left out, so this file need not change as roles
land.  The shared health site listens on C{worker.health_port} (9090 by
default, Postal's worker health port): one process, one C{/health} and one
C{/metrics} covering every role (the metrics live in one registry).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from twisted.application.service import IService, MultiService

from postal.config import PostalConfig
from postal.delivery.wakeup import Notifier
from postal.tap.common import make_role_base

__all__ = ["ROLES", "ROLE_NAME", "available_roles", "makeService"]

#: The roles, in start order: the web API and SMTP intake last in, first out.
ROLES = ("web", "smtp", "worker", "cron", "requeuer", "fast")

#: The all-in-one process's name: C{postal-allinone}, C{log/allinone.log}.
ROLE_NAME = "allinone"

RoleBuilder = Callable[..., IService]


def _builder(role: str) -> RoleBuilder | None:
    try:
        module = importlib.import_module(f"postal.tap.{role}")
    except ModuleNotFoundError as e:
        if e.name != f"postal.tap.{role}":
            raise  # the role exists but something it imports is missing: say so
        return None
    build: RoleBuilder | None = getattr(module, "build", None)
    return build


def available_roles() -> dict[str, RoleBuilder]:
    """The roles whose tap module exists and has a C{build} hook, in L{ROLES} order."""
    found = {}
    for role in ROLES:
        build = _builder(role)
        if build is not None:
            found[role] = build
    return found


def makeService(config: PostalConfig, reactor: Any = None) -> MultiService:
    """
    The all-in-one tree for C{config}.  C{reactor} defaults to the global
    one (imported here, in the tap layer, and only when called).
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    base = make_role_base(ROLE_NAME, config, reactor, config.worker.health_port, log_to_file=False)
    # One process: intake (smtp, web) wakes the workers directly after each commit.
    notifier = Notifier()
    for role, build in available_roles().items():
        if "notifier" in inspect.signature(build).parameters:
            service = build(config, reactor, base.pool, notifier=notifier)
        else:
            service = build(config, reactor, base.pool)
        service.setName(role)
        service.setServiceParent(base.service)
    return base.service

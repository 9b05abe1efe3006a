# -*- test-case-name: tests.tap.test_common -*-
"""
What every role's tap module shares: the C{--config} option, loading the
configuration with a clear error, the database pool service and the health
listener.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import attrs
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.python import usage

from postal.config import ConfigError, PostalConfig, config_path_from, load_config
from postal.db.pool import DatabasePool, make_engine
from postal.health import health_site
from postal.logs import LogFileService, observer_for

__all__ = [
    "RoleOptions", "load_config_for", "load_config_from_path", "RoleBase", "make_role_base",
    "tcp_endpoint_string", "listener",
]


class RoleOptions(usage.Options):
    """C{--config PATH}, defaulting to C{$POSTAL_CONFIG_FILE_PATH}, then C{./postal.yml}."""

    optParameters = [
        ["config", "c", None,
         "Path to postal.yml (default: $POSTAL_CONFIG_FILE_PATH, else ./postal.yml)"],
    ]


def load_config_for(options: usage.Options, environ: Any = None) -> PostalConfig:
    """
    Load the role's configuration from C{--config}, else
    C{$POSTAL_CONFIG_FILE_PATH}, else C{./postal.yml}; see
    L{load_config_from_path}.
    """
    env = os.environ if environ is None else environ
    return load_config_from_path(config_path_from(options["config"], env), env)


def load_config_from_path(path: str, environ: Any = None) -> PostalConfig:
    """
    Load the configuration at C{path}; on a bad file or key, print one line
    naming the problem and exit with status 1 before anything starts.
    """
    env = os.environ if environ is None else environ
    try:
        return load_config(path, env)
    except ConfigError as e:
        sys.stderr.write(f"postal: configuration error: {e}\n")
        raise SystemExit(1) from None


def tcp_endpoint_string(port: int, interface: str) -> str:
    """An endpoint description for C{interface:port}, IPv6 literals escaped."""
    escaped = interface.replace(":", r"\:")
    return f"tcp:{port}:interface={escaped}"


class _RoleTree(MultiService):
    """
    A role's top service: its children all stop (together) before its
    database pool does, so a child's C{stopService} can still commit:
    release a lease, record in-flight deliveries, finish a group commit.
    Twisted's own MultiService stops every child at once.
    """

    database: Service | None = None

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def stopService(self) -> Deferred[object]:
        Service.stopService(self)  # type: ignore[no-untyped-call]
        children: list[IService] = list(self)
        others = [c for c in reversed(children) if c is not self.database]
        stopped: Deferred[object] = DeferredList(  # type: ignore[assignment]
            [maybeDeferred(child.stopService) for child in others]
        )
        database = self.database
        if database is not None and database in children:
            stopped.addCallback(lambda _: database.stopService())
        return stopped


class _LoggedRoleTree(LogFileService, _RoleTree):
    """A twistd plugin role's top service, also writing C{log/<role>.log} (postal.tac has its own observer)."""


def listener(reactor: Any, description: str, factory: Any, name: str) -> StreamServerEndpointService:
    """
    A listening service for an endpoint description.  A port that cannot be
    bound fails start-up (twistd exits, the supervisor restarts with
    back-off) instead of leaving a process that serves nothing.
    """
    service = StreamServerEndpointService(serverFromString(reactor, description), factory)
    service._raiseSynchronously = True
    service.setName(name)
    return service


@attrs.frozen
class RoleBase:
    """A role's service tree with the pieces every role has already attached."""

    service: MultiService
    pool: DatabasePool
    config: PostalConfig


def make_role_base(
    role: str, config: PostalConfig, reactor: Any, health_port: int | None, *, log_to_file: bool = True,
) -> RoleBase:
    """
    A MultiService named C{postal-<role>} holding the database pool
    (started first, stopped only after every other child has stopped) and, when C{health_port} is given (not 0),
    the health site on 127.0.0.1.

    With C{log_to_file} (every twistd plugin role) the top service is a
    L{LogFileService} writing C{log/<role>.log} while the tree runs;
    C{postal.tac} passes False because it installs the observer itself.
    """
    top: _RoleTree | _LoggedRoleTree = (
        _LoggedRoleTree(observer_for(role, config)) if log_to_file else _RoleTree()
    )
    top.setName(f"postal-{role}")  # type: ignore[no-untyped-call]
    pool = DatabasePool(make_engine(config.database_url, config.database.pool_size), reactor,
                        threads=config.database.pool_size)
    pool.setServiceParent(top)  # type: ignore[no-untyped-call]
    top.database = pool
    if health_port:
        health = listener(reactor, tcp_endpoint_string(health_port, "127.0.0.1"),
                          health_site(role, pool, reactor), "health")
        health.setServiceParent(top)
    return RoleBase(service=top, pool=pool, config=config)

# -*- test-case-name: tests.delivery.test_tap -*-
"""
The C{postal-requeuer} role: one active per installation (the C{requeuer}
database lease; others wait as standbys), returning due retries and dead
workers' claims to the ready queue.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService

from postal.config import PostalConfig
from postal.db.delivery_store import SQLQueueMaintenance
from postal.db.pool import TransactionPool
from postal.delivery.requeuer import Requeuer
from postal.delivery.wakeup import Notifier
from postal.lease import LeaseService, lease_holder
from postal.tap.common import RoleOptions, load_config_for, make_role_base

__all__ = ["Options", "makeService", "build"]

#: Seconds: a dead requeuer's standby takes over within this period.
LEASE_PERIOD = 30.0


class Options(RoleOptions):
    """C{twistd postal-requeuer --config PATH}."""


def build(config: PostalConfig, reactor: Any, pool: TransactionPool, notifier: Notifier | None = None) -> IService:
    """The lease service driving the requeuer (pass the all-in-one process's L{Notifier})."""
    requeuer = Requeuer(reactor, SQLQueueMaintenance(pool), notifier if notifier is not None else Notifier(),
                        interval=config.requeuer.interval)
    service = LeaseService("requeuer", lease_holder(), pool, reactor, LEASE_PERIOD,
                           on_acquired=requeuer.start, on_lost=requeuer.stop)
    return service


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = load_config_for(options)
    base = make_role_base("requeuer", config, reactor, config.requeuer.health_port)
    build(config, reactor, base.pool).setServiceParent(base.service)
    return base.service

# -*- test-case-name: tests.cron.test_tap -*-
"""
The C{postal-cron} role: scheduled tasks, run only by the process that
holds the C{cron} lease (a second process waits as a standby).
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService

from postal.config import PostalConfig
from postal.cron.service import all_tasks, cron_service, dns_checkers
from postal.db.pool import TransactionPool
from postal.dns import make_resolver
from postal.lease import lease_holder
from postal.tap.common import RoleOptions, load_config_for, make_role_base

__all__ = ["Options", "makeService", "build"]


class Options(RoleOptions):
    """C{twistd postal-cron --config PATH}."""


def build(config: PostalConfig, reactor: Any, pool: TransactionPool) -> IService:
    """The role's services without the pool or health site (postal.tac shares them)."""
    check_domain, check_track_domain = dns_checkers(lambda: make_resolver(config.dns, reactor), config.dns)
    tasks = all_tasks(pool, reactor, check_domain, config.cron.batch_size, check_track_domain)
    return cron_service(tasks, pool, reactor, config.cron.lease_seconds, lease_holder())


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = load_config_for(options)
    base = make_role_base("cron", config, reactor, config.cron.health_port)
    build(config, reactor, base.pool).setServiceParent(base.service)
    return base.service

# -*- test-case-name: tests.delivery.test_tap -*-
"""
The C{postal-worker} role: claims queued outgoing messages and delivers
them over SMTP (DKIM-signed), recording outcomes and webhook requests, and
sends the queued webhook requests.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import Certificate
from twisted.internet.threads import deferToThread

from postal.config import PostalConfig
from postal.db.delivery_store import SQLDeliveryQueue
from postal.db.pool import TransactionPool
from postal.db.webhook_requests import SQLWebhookQueue
from postal.delivery.mx import parse_relay
from postal.delivery.outgoing import KeyCache, Policy
from postal.delivery.sender import SMTPSender
from postal.delivery.wakeup import Notifier, PostgresQueueListener
from postal.delivery.worker import DeliveryWorker
from postal.dns import make_resolver
from postal.keys import load_private_key
from postal.lease import lease_holder
from postal.tap.common import RoleOptions, load_config_for, make_role_base
from postal.webhooks.service import build_webhook_sender

__all__ = ["Options", "makeService", "build", "role_service", "policy_from"]


class Options(RoleOptions):
    """C{twistd postal-worker --config PATH}."""


def policy_from(config: PostalConfig) -> Policy:
    return Policy(
        return_path_domain=config.dns.return_path_domain,
        custom_return_path_prefix=config.dns.custom_return_path_prefix,
        dkim_identifier=config.dns.dkim_identifier,
        max_attempts=config.postal.default_maximum_delivery_attempts,
        hold_expiry_days=config.postal.default_maximum_hold_expiry_days,
        suppression_days=config.postal.default_suppression_list_automatic_removal_days,
        use_resent_sender=config.postal.use_resent_sender_header,
    )


def _key_cache(config: PostalConfig) -> KeyCache:
    path = config.postal.signing_key_path
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return KeyCache(load_private_key(f.read()))
    return KeyCache()


def _sender(config: PostalConfig, reactor: Any) -> SMTPSender:
    timeout = config.smtp_client.open_timeout

    def endpoint(address: str, port: int) -> IStreamClientEndpoint:
        cls = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
        return cls(reactor, address, port, timeout=timeout)

    trust_root = None
    if config.smtp_client.ca_file:
        with open(config.smtp_client.ca_file, "rb") as f:
            trust_root = Certificate.loadPEM(f.read())
    helo = config.dns.helo_hostname or config.postal.smtp_hostname or "localhost"
    return SMTPSender(reactor, make_resolver(config.dns, reactor), endpoint, helo,
                      read_timeout=config.smtp_client.read_timeout, idle_timeout=config.smtp_client.idle_timeout,
                      relays=[parse_relay(r) for r in config.postal.smtp_relays], trust_root=trust_root)


def build(config: PostalConfig, reactor: Any, pool: TransactionPool, notifier: Notifier | None = None) -> IService:
    """
    The role's services without the pool or health site (postal.tac shares
    them): the delivery worker, the webhook sender and, on PostgreSQL, the
    queue listener.  Pass the all-in-one process's L{Notifier} so the smtp
    intake wakes the worker directly after it commits.
    """
    top = MultiService()
    top.setName("worker")
    settings = config.worker
    webhooks = build_webhook_sender(config, reactor, SQLWebhookQueue(pool))
    worker = DeliveryWorker(reactor, SQLDeliveryQueue(pool), _sender(config, reactor), policy_from(config), _key_cache(config),
                            lease_holder(), concurrency=settings.concurrency,
                            per_destination=settings.per_destination_concurrency,
                            lease_seconds=settings.lease_seconds, poll_interval=settings.poll_interval,
                            run_in_thread=lambda fn, *args: deferToThread(fn, *args),
                            after_record=webhooks.wake)
    worker.setServiceParent(top)  # type: ignore[no-untyped-call]
    webhooks.setServiceParent(top)  # type: ignore[no-untyped-call]
    notifier = notifier if notifier is not None else Notifier()
    notifier.subscribe(worker.wake)
    if config.database_url.startswith("postgresql"):
        PostgresQueueListener(config.database_url, notifier, reactor).setServiceParent(top)  # type: ignore[no-untyped-call]
    return top


def role_service(config: PostalConfig, reactor: Any) -> IService:
    """The whole C{postal-worker} tree: the role base (pool, health site, log) and L{build}."""
    base = make_role_base("worker", config, reactor, config.worker.health_port)
    build(config, reactor, base.pool).setServiceParent(base.service)
    return base.service


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    return role_service(load_config_for(options), reactor)

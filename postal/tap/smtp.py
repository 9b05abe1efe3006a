# -*- test-case-name: tests.smtp.test_tap -*-
"""
The C{postal-smtp} role: SMTP listeners (plain with STARTTLS, optional
implicit TLS, optional PROXY protocol) over the intake service.
"""

from __future__ import annotations

import signal
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.protocols.tls import TLSMemoryBIOFactory

from postal.config import PostalConfig
from postal.db.intake import SQLIntakeStore
from postal.db.pool import TransactionPool
from postal.delivery.wakeup import IWakeup
from postal.groupcommit import GroupCommitter
from postal.supervisor.inherited import listen_description
from postal.intake.recipients import RecipientClassifier
from postal.intake.service import Intake
from postal.smtp.protocol import SMTPServerFactory
from postal.smtp.proxy import ProxyWrappingFactory
from postal.smtp.session import SessionSettings
from postal.smtp.tls import ReloadableTLSOptions
from postal.tap.common import RoleOptions, listener, load_config_for, make_role_base, tcp_endpoint_string

__all__ = ["Options", "makeService", "build"]


class Options(RoleOptions):
    """C{twistd postal-smtp --config PATH}."""


class _ReloadOnHangup(Service):
    """Re-reads the TLS certificate when the process gets SIGHUP."""

    def __init__(self, reactor: Any, tls: ReloadableTLSOptions) -> None:
        self._reactor = reactor
        self._tls = tls
        self.name = "tls-reload"

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        signal.signal(signal.SIGHUP, lambda *_: self._reactor.callFromThread(self._tls.reload))


def _intake(config: PostalConfig, reactor: Any, pool: TransactionPool, notifier: IWakeup | None) -> Intake:
    store = SQLIntakeStore(pool, reactor)
    # SQLite has one writer: a second commit would only wait on its lock.
    in_flight = 1 if pool.dialect == "sqlite" else 2
    committer = GroupCommitter(store.store_transactions, reactor, max_in_flight=in_flight,
                               after_commit=notifier.wake if notifier is not None else None)
    classifier = RecipientClassifier(
        store, config.dns.return_path_domain, config.dns.route_domain,
        config.dns.custom_return_path_prefix)
    return Intake(store, reactor, committer, classifier, config.postal.smtp_hostname)


def _factory(config: PostalConfig, reactor: Any, intake: Intake, tls: ReloadableTLSOptions | None,
             implicit_tls: bool) -> SMTPServerFactory:
    smtp = config.smtp_server
    settings = SessionSettings(
        hostname=config.postal.smtp_hostname, max_message_size=config.max_message_size_bytes,
        max_recipients=smtp.max_recipients, tls_available=tls is not None,
        allow_auth_without_tls=smtp.allow_auth_without_tls,
    )
    return SMTPServerFactory(
        settings=settings, intake=intake, clock=reactor, tls_options=tls,
        idle_timeout=smtp.idle_timeout, data_timeout=smtp.data_timeout,
        max_connections=smtp.max_connections, max_connections_per_ip=smtp.max_connections_per_ip,
        max_auth_failures=smtp.max_auth_failures, implicit_tls=implicit_tls,
        log_connections=smtp.log_connections,
    )


def _listener(reactor: Any, description: str, factory: Any, proxy: bool, name: str) -> Service:
    if proxy:
        factory = ProxyWrappingFactory(factory)  # type: ignore[no-untyped-call]
    return listener(reactor, description, factory, name)


def build(config: PostalConfig, reactor: Any, pool: TransactionPool, notifier: IWakeup | None = None) -> IService:
    """
    The role's services without the pool or health site (postal.tac shares
    them); C{notifier} wakes in-process workers after each commit.  Each
    listener uses an inherited socket when the supervisor passed one (several
    smtp processes on one port), else binds its port.
    """
    smtp = config.smtp_server
    top = MultiService()
    top.setName("smtp")
    tls = None
    if smtp.tls_enabled and smtp.tls_certificate_path and smtp.tls_private_key_path:
        tls = ReloadableTLSOptions(smtp.tls_certificate_path, smtp.tls_private_key_path)
        _ReloadOnHangup(reactor, tls).setServiceParent(top)  # type: ignore[no-untyped-call]
    intake = _intake(config, reactor, pool, notifier)
    plain = _factory(config, reactor, intake, tls, implicit_tls=False)
    _listener(reactor, listen_description("smtp", tcp_endpoint_string(smtp.default_port, smtp.default_bind_address)), plain,
              smtp.proxy_protocol, "smtp-listener").setServiceParent(top)
    if tls is not None and smtp.tls_port:
        secure = TLSMemoryBIOFactory(tls, False, _factory(config, reactor, intake, tls, implicit_tls=True))
        _listener(reactor, listen_description("smtps", tcp_endpoint_string(smtp.tls_port, smtp.default_bind_address)), secure,
                  smtp.proxy_protocol, "smtps-listener").setServiceParent(top)
    return top


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = load_config_for(options)
    base = make_role_base("smtp", config, reactor, config.smtp_server.health_port)
    build(config, reactor, base.pool).setServiceParent(base.service)
    return base.service

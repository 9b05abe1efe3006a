# -*- test-case-name: tests.web.test_tap -*-
"""
The C{postal-web} role: Postal's API v1, the JWKS document, C{/health} and
C{/metrics} on C{web_server.default_bind_address:default_port}, and the
same site over TLS on C{web_server.tls_port} when C{tls_enabled}.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet import ssl
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.server import Site

from postal.config import PostalConfig
from postal.db.api import SQLAPIStore
from postal.db.pool import TransactionPool
from postal.health import HealthResource, database_answers
from postal.keys import ensure_signing_key, jwk, load_private_key
from postal.delivery.wakeup import IWakeup
from postal.groupcommit import GroupCommitter
from postal.supervisor.inherited import listen_description
from postal.outgoing.submission import APIMessages
from postal.tap.common import RoleOptions, listener, load_config_for, make_role_base, tcp_endpoint_string
from postal.web.api_v1 import APIv1
from postal.web.site import web_site

__all__ = ["Options", "makeService", "build", "build_site"]


class Options(RoleOptions):
    """C{twistd postal-web --config PATH}."""


def _jwks(config: PostalConfig) -> dict[str, Any]:
    path = config.postal.signing_key_path or os.path.join(config.root, "signing.key")
    ensure_signing_key(path)
    with open(path, "rb") as f:
        return {"keys": [jwk(load_private_key(f.read()))]}


def build_site(config: PostalConfig, reactor: Any, pool: TransactionPool, notifier: IWakeup | None = None) -> Site:
    """The web role's site over C{pool}: the API, JWKS, health and metrics."""
    store = SQLAPIStore(pool)
    # SQLite has one writer: one big transaction at a time; PostgreSQL does best with two.
    in_flight = 1 if pool.dialect == "sqlite" else 2
    committer = GroupCommitter(store.store_transactions, reactor, max_batch=100, max_in_flight=in_flight,
                               after_commit=notifier.wake if notifier is not None else None)
    messages = APIMessages(store, committer, reactor, config.postal.web_hostname, config.dns.return_path_domain)
    api = APIv1(messages, reactor, _jwks(config), config.web_server.max_request_size)
    health = HealthResource("web", lambda: database_answers(pool, reactor))
    return web_site(api.app.resource(), health, config.web_server.max_request_size)


def _tls_options(config: PostalConfig) -> ssl.CertificateOptions:
    web = config.web_server
    assert web.tls_certificate_path and web.tls_private_key_path
    with open(web.tls_certificate_path, "rb") as f:
        cert = f.read()
    with open(web.tls_private_key_path, "rb") as f:
        key = f.read()
    return ssl.PrivateCertificate.loadPEM(cert + b"\n" + key).options()  # type: ignore[no-any-return]


def build(config: PostalConfig, reactor: Any, pool: TransactionPool, notifier: IWakeup | None = None) -> IService:
    """
    The role's services without the pool or its own health port (postal.tac
    shares them); C{notifier} wakes in-process workers after each commit.
    """
    web = config.web_server
    top = MultiService()
    top.setName("web")
    site = build_site(config, reactor, pool, notifier)
    listener(reactor, listen_description("web", tcp_endpoint_string(web.default_port, web.default_bind_address)),
             site, "web-listener").setServiceParent(top)
    if web.tls_enabled:
        listener(reactor, listen_description("web-tls", tcp_endpoint_string(web.tls_port, web.default_bind_address)),
                 TLSMemoryBIOFactory(_tls_options(config), False, site), "web-tls-listener").setServiceParent(top)
    return top


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    config = load_config_for(options)
    base = make_role_base("web", config, reactor, None)
    build(config, reactor, base.pool).setServiceParent(base.service)
    return base.service

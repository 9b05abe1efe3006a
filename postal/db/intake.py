# -*- test-case-name: tests.intake.test_sql_store -*-
"""
The SQL side of SMTP intake: the lookups the SMTP server needs (credentials,
servers, routes, verified domains), cached briefly on the injected clock so
the hot path does not query per RCPT, and the durable group-commit store.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

import attrs
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from postal.db import schema as s
from postal.db._rows import inserted_id
from postal.db.credentials import credential_for_ip, touch_credential_txn
from postal.db.messages import NewTransaction, store_transactions_txn
from postal.db.pool import TransactionPool
from postal.intake.interfaces import IIntakeStore
from postal.intake.values import (
    CredentialInfo, DomainInfo, EndpointRef, RouteInfo, ServerInfo,
)
from postal.tokens import new_uuid, route_token

__all__ = ["SQLIntakeStore", "create_route_txn", "add_route_endpoint_txn", "CACHE_SECONDS"]

#: How long a lookup answer may be reused.  Short: a revoked credential or a
#: suspended server takes effect within this many seconds.
CACHE_SECONDS = 10.0

_T = TypeVar("_T")


def _server_columns() -> list[Any]:
    return [
        s.servers.c.id.label("server_id"), s.servers.c.organization_id,
        s.servers.c.permalink.label("server_permalink"),
        s.organizations.c.permalink.label("organization_permalink"),
        s.servers.c.token.label("server_token"), s.servers.c.suspended_at,
        s.organizations.c.suspended_at.label("organization_suspended_at"),
        s.servers.c.privacy_mode, s.servers.c.allow_sender, s.servers.c.log_smtp_data,
    ]


def _server_join(base: Any) -> Any:
    return base.join(s.servers, s.servers.c.id == base.c.server_id).join(
        s.organizations, s.organizations.c.id == s.servers.c.organization_id)


def _live() -> Any:
    return and_(s.servers.c.deleted_at.is_(None), s.organizations.c.deleted_at.is_(None))


def _server_info(m: Any) -> ServerInfo:
    return ServerInfo(
        id=m["server_id"], organization_id=m["organization_id"],
        path=f"{m['organization_permalink']}/{m['server_permalink']}", token=m["server_token"],
        suspended=m["suspended_at"] is not None or m["organization_suspended_at"] is not None,
        privacy_mode=bool(m["privacy_mode"]), allow_sender=bool(m["allow_sender"]),
        log_smtp_data=bool(m["log_smtp_data"]),
    )


def _credentials_txn(conn: Connection, *where: Any) -> list[CredentialInfo]:
    query = select(s.credentials.c.id, s.credentials.c.type, s.credentials.c.key,
                   s.credentials.c.hold, *_server_columns()).select_from(
        _server_join(s.credentials)).where(_live(), *where).order_by(s.credentials.c.id)
    return [
        CredentialInfo(id=m["id"], type=m["type"], key=m["key"], hold=bool(m["hold"]),
                       server=_server_info(m))
        for m in (row._mapping for row in conn.execute(query))
    ]


def smtp_credential_by_key_txn(conn: Connection, key: str) -> CredentialInfo | None:
    found = _credentials_txn(conn, s.credentials.c.key == key, s.credentials.c.type == "SMTP")
    return found[0] if found else None


def smtp_credentials_for_server_txn(conn: Connection, path: str) -> list[CredentialInfo]:
    for separator in ("/", "_"):
        org, sep, server = path.partition(separator)
        if sep and org and server:
            return _credentials_txn(
                conn, s.credentials.c.type == "SMTP", s.organizations.c.permalink == org,
                s.servers.c.permalink == server)
    return []


def smtp_ip_credentials_txn(conn: Connection) -> list[CredentialInfo]:
    return _credentials_txn(conn, s.credentials.c.type == "SMTP-IP")


def server_by_token_txn(conn: Connection, token: str) -> ServerInfo | None:
    query = select(*_server_columns()).select_from(
        s.servers.join(s.organizations, s.organizations.c.id == s.servers.c.organization_id)
    ).where(_live(), s.servers.c.token == token)
    row = conn.execute(query).first()
    return None if row is None else _server_info(row._mapping)


def _routes_txn(conn: Connection, *where: Any) -> list[RouteInfo]:
    query = select(
        s.routes.c.id.label("route_id"), s.routes.c.name, s.routes.c.token.label("route_token"),
        s.routes.c.mode, s.routes.c.endpoint_type, s.routes.c.endpoint_id,
        s.domains.c.name.label("domain_name"), *_server_columns(),
    ).select_from(
        _server_join(s.routes).outerjoin(s.domains, s.domains.c.id == s.routes.c.domain_id)
    ).where(_live(), *where).order_by(s.routes.c.id)
    routes = []
    for row in conn.execute(query).all():
        m = row._mapping
        extra = conn.execute(select(
            s.additional_route_endpoints.c.endpoint_type, s.additional_route_endpoints.c.endpoint_id,
        ).where(s.additional_route_endpoints.c.route_id == m["route_id"])
            .order_by(s.additional_route_endpoints.c.id)).all()
        endpoints = (EndpointRef(m["endpoint_type"], m["endpoint_id"]),) + tuple(
            EndpointRef(e[0], e[1]) for e in extra)
        routes.append(RouteInfo(
            id=m["route_id"], name=m["name"], token=m["route_token"], mode=m["mode"],
            domain_name=m["domain_name"], server=_server_info(m), endpoints=endpoints,
        ))
    return routes


def route_by_token_txn(conn: Connection, token: str) -> RouteInfo | None:
    found = _routes_txn(conn, s.routes.c.token == token)
    return found[0] if found else None


def route_for_address_txn(conn: Connection, name: str, domain: str) -> RouteInfo | None:
    """Postal's lookup: global over all servers, the exact name before C{*}."""
    found = _routes_txn(conn, s.domains.c.name == domain.lower(),
                        or_(s.routes.c.name == name, s.routes.c.name == "*"))
    found.sort(key=lambda route: route.name == "*")
    return found[0] if found else None


def return_path_route_txn(conn: Connection, server_id: int) -> RouteInfo | None:
    found = _routes_txn(conn, s.routes.c.server_id == server_id, s.routes.c.name == "__returnpath__")
    return found[0] if found else None


def verified_domains_txn(conn: Connection, server_id: int, organization_id: int) -> list[DomainInfo]:
    rows = conn.execute(select(s.domains.c.id, s.domains.c.name, s.domains.c.use_for_any).where(
        s.domains.c.organization_id == organization_id,
        or_(s.domains.c.server_id == server_id, s.domains.c.server_id.is_(None)),
        s.domains.c.verified_at.is_not(None),
    ).order_by(s.domains.c.server_id.is_(None), s.domains.c.id)).all()
    return [DomainInfo(id=r[0], name=r[1], use_for_any=bool(r[2])) for r in rows]


def store_received_txn(
    conn: Connection, now: float, transactions: Sequence[NewTransaction],
) -> list[list[str]]:
    stored = store_transactions_txn(conn, now, transactions)
    return [[message.token for message in one] for one in stored]


def create_route_txn(
    conn: Connection, now: float, server_id: int, name: str, domain_id: int | None,
    mode: str = "Endpoint", endpoint_type: str | None = None, endpoint_id: int | None = None,
    token: str | None = None,
) -> int:
    """Add a route (routes have no management commands yet: tests and benchmarks)."""
    return inserted_id(conn.execute(s.routes.insert().values(
        uuid=new_uuid(), server_id=server_id, domain_id=domain_id, name=name,
        token=token or route_token(), mode=mode, spam_mode="Mark",
        endpoint_type=endpoint_type, endpoint_id=endpoint_id, created_at=now,
    )))


def add_route_endpoint_txn(
    conn: Connection, now: float, route_id: int, endpoint_type: str, endpoint_id: int,
) -> None:
    conn.execute(s.additional_route_endpoints.insert().values(
        route_id=route_id, endpoint_type=endpoint_type, endpoint_id=endpoint_id, created_at=now))


@attrs.define
class _TTLCache:
    """Answers (negative ones too) kept for C{CACHE_SECONDS} on the injected clock."""

    _clock: IReactorTime
    _seconds: float
    _entries: dict[Any, tuple[float, Any]] = attrs.field(factory=dict)

    def get(self, key: Any, load: Callable[[], Deferred[_T]]) -> Deferred[_T]:
        now = self._clock.seconds()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return succeed(hit[1])
        if len(self._entries) > 10000:
            self._entries.clear()

        def remember(value: _T) -> _T:
            self._entries[key] = (now + self._seconds, value)
            return value

        return load().addCallback(remember)


@implementer(IIntakeStore)
@attrs.define
class SQLIntakeStore:
    """L{IIntakeStore} over a L{TransactionPool}."""

    _pool: TransactionPool
    _clock: IReactorTime
    _cache_seconds: float = CACHE_SECONDS
    _cache: _TTLCache = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._cache = _TTLCache(self._clock, self._cache_seconds)

    def smtp_credential_by_key(self, key: str) -> Deferred[CredentialInfo | None]:
        # Not cached: a failed guess must not fill memory, and AUTH is once per session.
        return self._pool.run_in_transaction("smtp_credential_by_key", smtp_credential_by_key_txn, key)

    def smtp_credentials_for_server(self, path: str) -> Deferred[list[CredentialInfo]]:
        return self._pool.run_in_transaction(
            "smtp_credentials_for_server", smtp_credentials_for_server_txn, path)

    def smtp_ip_credential_for(self, address: str) -> Deferred[CredentialInfo | None]:
        credentials: Deferred[list[CredentialInfo]] = self._cache.get(
            ("smtp-ip",), lambda: self._pool.run_in_transaction("smtp_ip_credentials", smtp_ip_credentials_txn))
        return credentials.addCallback(credential_for_ip, address)

    def server_by_token(self, token: str) -> Deferred[ServerInfo | None]:
        return self._cache.get(("server", token), lambda: self._pool.run_in_transaction(
            "server_by_token", server_by_token_txn, token))

    def route_by_token(self, token: str) -> Deferred[RouteInfo | None]:
        return self._cache.get(("route-token", token), lambda: self._pool.run_in_transaction(
            "route_by_token", route_by_token_txn, token))

    def route_for_address(self, name: str, domain: str) -> Deferred[RouteInfo | None]:
        key = ("route", name, domain.lower())
        return self._cache.get(key, lambda: self._pool.run_in_transaction(
            "route_for_address", route_for_address_txn, name, domain))

    def return_path_route(self, server_id: int) -> Deferred[RouteInfo | None]:
        return self._cache.get(("return-path-route", server_id), lambda: self._pool.run_in_transaction(
            "return_path_route", return_path_route_txn, server_id))

    def verified_domains(self, server: ServerInfo) -> Deferred[list[DomainInfo]]:
        return self._cache.get(("domains", server.id), lambda: self._pool.run_in_transaction(
            "verified_domains", verified_domains_txn, server.id, server.organization_id))

    def touch_credential(self, credential_id: int, now: float) -> Deferred[None]:
        return self._pool.run_in_transaction("touch_credential", touch_credential_txn, credential_id, now)

    def store_transactions(
        self, now: float, transactions: Sequence[NewTransaction],
    ) -> Deferred[list[list[str]]]:
        return self._pool.run_in_transaction("store_received_messages", store_received_txn,
                                             now, list(transactions))

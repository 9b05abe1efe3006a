"""
An account to receive mail for (organization, server, verified domain,
credentials, routes) and an SMTP factory over the real SQL intake store,
for protocol, intake and socket tests.
"""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import func, select
from twisted.internet.task import Clock

from postal.db import schema as s
from postal.db.credentials import create_credential_txn
from postal.db.domains import create_domain_txn
from postal.db.intake import SQLIntakeStore, create_route_txn
from postal.db.organizations import create_organization_txn
from postal.db.pool import TransactionPool
from postal.db.servers import create_server_txn
from postal.groupcommit import GroupCommitter
from postal.intake.recipients import RecipientClassifier
from postal.intake.service import Intake
from postal.smtp.protocol import SMTPServerFactory
from postal.smtp.session import SessionSettings

HOSTNAME = "mx.postal.test"
RETURN_PATH_DOMAIN = "rp.postal.test"
ROUTE_DOMAIN = "routes.postal.test"
SMTP_KEY = "SmtpKey0123456789abcdefX"
# A tiny fixed DKIM key keeps fixtures fast (RSA generation is slow).
_DKIM = "not-a-real-key"


@attrs.frozen
class Account:
    org_id: int
    server_id: int
    server_token: str
    server_path: str
    domain_id: int
    smtp_credential_id: int
    route_id: int
    wildcard_route_id: int
    reject_route_id: int
    route_token: str


def make_account(pool: Any, ip_network: str | None = None) -> Account:
    """example.com verified on server acme/mail, with an SMTP key and routes."""
    now = 1_700_000_000.0
    org = pool.call("org", create_organization_txn, now, "Acme", "acme", None)
    server = pool.call("server", create_server_txn, now, "acme", "Mail", "mail")
    domain = pool.call("domain", create_domain_txn, now, org.id, server.id, "example.com", True, _DKIM)
    inbound = pool.call("domain", create_domain_txn, now, org.id, server.id, "in.example.net", True, _DKIM)
    credential = pool.call("cred", create_credential_txn, now, server.id, "SMTP", "smtp", SMTP_KEY)
    if ip_network:
        pool.call("cred", create_credential_txn, now, server.id, "SMTP-IP", "ip", ip_network)
    route_id = pool.call("route", create_route_txn, now, server.id, "support", inbound.id,
                         "Endpoint", "HTTPEndpoint", 7, "rtoken01")
    wildcard = pool.call("route", create_route_txn, now, server.id, "*", inbound.id, "Accept")
    reject = pool.call("route", create_route_txn, now, server.id, "spam", inbound.id, "Reject")
    return Account(
        org_id=org.id, server_id=server.id, server_token=server.token, server_path="acme/mail",
        domain_id=domain.id, smtp_credential_id=credential.id, route_id=route_id,
        wildcard_route_id=wildcard, reject_route_id=reject, route_token="rtoken01",
    )


def make_intake(pool: TransactionPool, clock: Any) -> Intake:
    store = SQLIntakeStore(pool, clock)
    classifier = RecipientClassifier(store, RETURN_PATH_DOMAIN, ROUTE_DOMAIN, "psrp")
    return Intake(store, clock, GroupCommitter(store.store_transactions, clock), classifier, HOSTNAME)


def make_factory(pool: TransactionPool, clock: Any = None, **overrides: Any) -> SMTPServerFactory:
    clock = clock if clock is not None else Clock()
    settings_keys = {f.name for f in attrs.fields(SessionSettings)}
    settings = SessionSettings(
        hostname=HOSTNAME, max_message_size=overrides.pop("max_message_size", 1024 * 1024),
        **{k: overrides.pop(k) for k in list(overrides) if k in settings_keys},
    )
    return SMTPServerFactory(settings=settings, intake=make_intake(pool, clock), clock=clock, **overrides)


def count(pool: Any, table: Any) -> int:
    return int(pool.call("count", lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()))


def messages(pool: Any) -> list[dict[str, Any]]:
    def rows(conn: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(select(s.messages).order_by(s.messages.c.id))]
    return list(pool.call("messages", rows))


def raw(pool: Any, raw_id: int) -> bytes:
    return bytes(pool.call("raw", lambda conn: conn.execute(
        select(s.raw_messages.c.data).where(s.raw_messages.c.id == raw_id)).scalar_one()))

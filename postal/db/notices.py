# -*- test-case-name: tests.db.test_cron_store -*-
"""
Webhook notices the cron role raises: send-limit notices (Postal's
C{Server.send_send_limit_notifications}, postal-behaviour.md section 11.2)
and DomainDNSError after a scheduled DNS check (section 6.2).  Each notice
is recorded and queued in one transaction, so it is raised exactly once.
"""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db.domains import Domain, DNSCheckResult, record_dns_check_txn
from postal.db.stats import live_total_txn
from postal.db.webhooks import enqueue_webhook_event_txn

__all__ = [
    "SEND_LIMIT_KINDS", "SendLimitNotice", "send_limit_notices_txn", "server_webhook_hash_txn",
    "record_scheduled_dns_check_txn", "domain_dns_error_payload",
]

#: Notice kind -> webhook event.
SEND_LIMIT_KINDS = {"approaching": "SendLimitApproaching", "exceeded": "SendLimitExceeded"}

#: A state change is noticed if it happened in the last 3 minutes...
_RECENT = 3 * 60.0
#: ...and the server was not told of the same kind in the last hour.
_QUIET = 60 * 60.0


@attrs.frozen
class SendLimitNotice:
    server_id: int
    kind: str
    volume: int
    limit: int | None


def server_webhook_hash_txn(conn: Connection, server_id: int) -> dict[str, Any]:
    """Postal's C{server.webhook_hash}: C{{uuid, name, permalink, organization}}."""
    row = conn.execute(select(
        s.servers.c.uuid, s.servers.c.name, s.servers.c.permalink, s.organizations.c.permalink.label("org"),
    ).join(s.organizations, s.organizations.c.id == s.servers.c.organization_id)
        .where(s.servers.c.id == server_id)).one()
    return {"uuid": row.uuid, "name": row.name, "permalink": row.permalink, "organization": row.org}


def send_limit_notices_txn(conn: Connection, now: float) -> list[SendLimitNotice]:
    """
    For each server that came near or over its send limit in the last three
    minutes and was not told so in the last hour: mark it told and queue
    SendLimitApproaching/SendLimitExceeded (to all-events webhooks only).
    """
    notices = []
    for kind, event in SEND_LIMIT_KINDS.items():
        at = s.servers.c[f"send_limit_{kind}_at"]
        notified = s.servers.c[f"send_limit_{kind}_notified_at"]
        rows = conn.execute(select(s.servers.c.id, s.servers.c.send_limit).where(
            s.servers.c.deleted_at.is_(None), at.is_not(None), at > now - _RECENT,
            or_(notified.is_(None), notified < now - _QUIET),
        ).order_by(s.servers.c.id)).all()
        for server_id, limit in rows:
            volume = live_total_txn(conn, server_id, "outgoing", now)
            conn.execute(update(s.servers).where(s.servers.c.id == server_id).values(**{notified.name: now}))
            enqueue_webhook_event_txn(conn, now, server_id, event, {
                "server": server_webhook_hash_txn(conn, server_id), "volume": volume, "limit": limit,
            })
            notices.append(SendLimitNotice(server_id, kind, volume, limit))
    return notices


def domain_dns_error_payload(server: dict[str, Any], domain: Domain) -> dict[str, Any]:
    """The DomainDNSError payload (api-contract.md section 3.6), keys in Postal's order."""
    return {
        "server": server, "domain": domain.name, "uuid": domain.uuid,
        "dns_checked_at": domain.dns_checked_at,
        "spf_status": domain.spf_status, "spf_error": domain.spf_error,
        "dkim_status": domain.dkim_status, "dkim_error": domain.dkim_error,
        "mx_status": domain.mx_status, "mx_error": domain.mx_error,
        "return_path_status": domain.return_path_status, "return_path_error": domain.return_path_error,
    }


def record_scheduled_dns_check_txn(
    conn: Connection, domain_id: int, now: float, result: DNSCheckResult,
) -> bool:
    """
    Record a scheduled check's result; when the records are not OK and a
    server owns the domain, queue DomainDNSError in the same transaction.

    @return: whether DomainDNSError was raised.
    """
    domain = record_dns_check_txn(conn, domain_id, now, result)
    if result.ok or domain.server_id is None:
        return False
    payload = domain_dns_error_payload(server_webhook_hash_txn(conn, domain.server_id), domain)
    enqueue_webhook_event_txn(conn, now, domain.server_id, "DomainDNSError", payload)
    return True

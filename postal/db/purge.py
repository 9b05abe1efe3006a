# -*- test-case-name: tests.db.test_cron_store -*-
"""
Purging soft-deleted organizations and servers (Postal's
C{ActionDeletionsScheduledTask}) with every row that references them.

A server's messages and raw messages can be many, so they go first in
bounded batches (L{purge_server_batch_txn}, repeated until it returns 0);
the rest is small and goes in one transaction (L{purge_server_rows_txn}).
"""

from __future__ import annotations

from sqlalchemy import Table, delete, or_, select
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db.retention import delete_messages_txn

__all__ = [
    "servers_to_purge_txn", "organizations_to_purge_txn", "purge_server_batch_txn",
    "purge_server_rows_txn", "purge_organization_rows_txn", "SERVER_TABLES", "ORGANIZATION_TABLES",
]

#: Tables with a C{server_id}, emptied of a purged server's rows in this
#: order after its messages (children before parents).
SERVER_TABLES: tuple[Table, ...] = (
    s.queued_messages, s.webhook_attempts, s.webhook_requests, s.suppressions, s.live_stats,
    s.stats_hourly, s.stats_daily, s.stats_monthly, s.stats_yearly, s.credentials,
    s.http_endpoints, s.smtp_endpoints, s.address_endpoints, s.ip_pool_rules, s.track_domains,
)

#: Tables with an C{organization_id}, emptied after the organization's servers.
ORGANIZATION_TABLES: tuple[Table, ...] = (
    s.organization_users, s.organization_ip_pools, s.ip_pool_rules,
)


def servers_to_purge_txn(conn: Connection) -> list[int]:
    """Servers deleted themselves or belonging to a deleted organization."""
    deleted_orgs = select(s.organizations.c.id).where(s.organizations.c.deleted_at.is_not(None))
    return list(conn.execute(select(s.servers.c.id).where(or_(
        s.servers.c.deleted_at.is_not(None), s.servers.c.organization_id.in_(deleted_orgs),
    )).order_by(s.servers.c.id)).scalars())


def organizations_to_purge_txn(conn: Connection) -> list[int]:
    return list(conn.execute(select(s.organizations.c.id).where(
        s.organizations.c.deleted_at.is_not(None)).order_by(s.organizations.c.id)).scalars())


def purge_server_batch_txn(conn: Connection, server_id: int, limit: int) -> int:
    """
    Delete up to C{limit} of the server's messages and, with what is left
    of C{limit}, its raw messages; fewer than C{limit} means none are left.
    """
    ids = list(conn.execute(select(s.messages.c.id).where(s.messages.c.server_id == server_id)
                            .order_by(s.messages.c.id).limit(limit)).scalars())
    delete_messages_txn(conn, ids)
    room = limit - len(ids)
    if room <= 0:
        return len(ids)
    raw_ids = list(conn.execute(select(s.raw_messages.c.id).where(s.raw_messages.c.server_id == server_id)
                                .order_by(s.raw_messages.c.id).limit(room)).scalars())
    if raw_ids:
        conn.execute(delete(s.raw_messages).where(s.raw_messages.c.id.in_(raw_ids)))
    return len(ids) + len(raw_ids)


def _delete_domains(conn: Connection, condition: object) -> None:
    """Domains with what hangs off them (track domains, routes on them)."""
    domain_ids = select(s.domains.c.id).where(condition)  # type: ignore[arg-type]
    conn.execute(delete(s.track_domains).where(s.track_domains.c.domain_id.in_(domain_ids)))
    _delete_routes(conn, s.routes.c.domain_id.in_(domain_ids))
    conn.execute(delete(s.domains).where(condition))  # type: ignore[arg-type]


def _delete_routes(conn: Connection, condition: object) -> None:
    route_ids = select(s.routes.c.id).where(condition)  # type: ignore[arg-type]
    conn.execute(delete(s.additional_route_endpoints)
                 .where(s.additional_route_endpoints.c.route_id.in_(route_ids)))
    conn.execute(delete(s.routes).where(condition))  # type: ignore[arg-type]


def purge_server_rows_txn(conn: Connection, server_id: int) -> None:
    """Delete the server and everything else of it (its messages must be gone)."""
    for table in SERVER_TABLES:
        conn.execute(delete(table).where(table.c.server_id == server_id))
    webhook_ids = select(s.webhooks.c.id).where(s.webhooks.c.server_id == server_id)
    conn.execute(delete(s.webhook_events).where(s.webhook_events.c.webhook_id.in_(webhook_ids)))
    conn.execute(delete(s.webhooks).where(s.webhooks.c.server_id == server_id))
    _delete_routes(conn, s.routes.c.server_id == server_id)
    _delete_domains(conn, s.domains.c.server_id == server_id)
    conn.execute(delete(s.servers).where(s.servers.c.id == server_id))


def purge_organization_rows_txn(conn: Connection, organization_id: int) -> bool:
    """
    Delete the organization and its own rows once it has no servers left.

    @return: False (and nothing deleted) while a server of it remains.
    """
    remaining = conn.execute(select(s.servers.c.id).where(
        s.servers.c.organization_id == organization_id).limit(1)).first()
    if remaining is not None:
        return False
    for table in ORGANIZATION_TABLES:
        conn.execute(delete(table).where(table.c.organization_id == organization_id))
    _delete_domains(conn, s.domains.c.organization_id == organization_id)
    conn.execute(delete(s.organizations).where(s.organizations.c.id == organization_id))
    return True

# -*- test-case-name: tests.db.test_accounts -*-
"""Mail servers: creation and the lookups every role needs."""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import Select, select
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import inserted_id, to_record, to_record_or_none
from postal.db.organizations import check_permalink, get_organization_by_permalink_txn, make_permalink
from postal.errors import Conflict, InvalidInput, NotFound
from postal.tokens import new_uuid, server_token

__all__ = [
    "Server", "create_server_txn", "get_server_txn", "get_server_by_token_txn",
    "find_server_txn", "split_server_path",
]

RESERVED_SERVER_PERMALINKS = frozenset(
    {"new", "all", "search", "stats", "edit", "manage", "delete", "destroy", "remove"}
)
MODES = ("Live", "Development")


@attrs.frozen
class Server:
    id: int
    uuid: str
    organization_id: int
    name: str
    permalink: str
    token: str
    mode: str
    ip_pool_id: int | None
    send_limit: int | None
    message_retention_days: int | None
    raw_message_retention_days: int | None
    raw_message_retention_size: int | None
    spam_threshold: float
    spam_failure_threshold: float
    outbound_spam_threshold: float | None
    postmaster_address: str | None
    allow_sender: bool
    privacy_mode: bool
    log_smtp_data: bool
    suspended_at: float | None
    suspension_reason: str | None
    organization_permalink: str = ""
    organization_suspended_at: float | None = None

    @property
    def suspended(self) -> bool:
        """Postal: a server is suspended when it or its organization is."""
        return self.suspended_at is not None or self.organization_suspended_at is not None

    @property
    def path(self) -> str:
        """C{org/server}: the CLI's server argument and the CRAM-MD5 username."""
        return f"{self.organization_permalink}/{self.permalink}"


def _server_query() -> Select[Any]:
    return select(
        s.servers,
        s.organizations.c.permalink.label("organization_permalink"),
        s.organizations.c.suspended_at.label("organization_suspended_at"),
    ).join(s.organizations, s.organizations.c.id == s.servers.c.organization_id).where(
        s.servers.c.deleted_at.is_(None), s.organizations.c.deleted_at.is_(None)
    )


def split_server_path(path: str) -> tuple[str, str]:
    """C{org/server} (Postal also accepts C{org_server}) to its two permalinks."""
    for separator in ("/", "_"):
        org, sep, server = path.partition(separator)
        if sep and org and server:
            return org, server
    raise InvalidInput(f"{path!r} is not ORG/SERVER")


def create_server_txn(
    conn: Connection, now: float, org_permalink: str, name: str, permalink: str | None,
    mode: str = "Live", spam_threshold: float = 5, spam_failure_threshold: float = 20,
) -> Server:
    if mode not in MODES:
        raise InvalidInput(f"mode must be Live or Development, not {mode!r}")
    if not name.strip():
        raise InvalidInput("server name is required")
    org = get_organization_by_permalink_txn(conn, org_permalink)
    link = permalink if permalink is not None else make_permalink(name)
    check_permalink(link, RESERVED_SERVER_PERMALINKS, "server")
    clash = conn.execute(
        select(s.servers.c.id).where(
            s.servers.c.organization_id == org.id,
            (s.servers.c.permalink == link) | (s.servers.c.name == name),
        )
    ).first()
    if clash is not None:
        raise Conflict(f"organization {org.permalink!r} already has a server named {name!r} or with permalink {link!r}")
    token = server_token()
    while conn.execute(select(s.servers.c.id).where(s.servers.c.token == token)).first():
        token = server_token()
    server_id = inserted_id(conn.execute(s.servers.insert().values(
        uuid=new_uuid(), organization_id=org.id, name=name, permalink=link, token=token,
        mode=mode, message_retention_days=60, raw_message_retention_days=30,
        raw_message_retention_size=2048, spam_threshold=spam_threshold,
        spam_failure_threshold=spam_failure_threshold, allow_sender=False,
        privacy_mode=False, log_smtp_data=False, created_at=now, updated_at=now,
    )))
    return get_server_txn(conn, server_id)


def get_server_txn(conn: Connection, server_id: int) -> Server:
    row = conn.execute(_server_query().where(s.servers.c.id == server_id)).first()
    if row is None:
        raise NotFound(f"no server with id {server_id}")
    return to_record(Server, row)


def get_server_by_token_txn(conn: Connection, token: str) -> Server | None:
    row = conn.execute(_server_query().where(s.servers.c.token == token)).first()
    return to_record_or_none(Server, row)


def find_server_txn(conn: Connection, path: str) -> Server:
    """The server named by C{org/server}, or L{NotFound} naming it."""
    org, server = split_server_path(path)
    row = conn.execute(
        _server_query().where(
            s.organizations.c.permalink == org, s.servers.c.permalink == server
        )
    ).first()
    if row is None:
        raise NotFound(f"no server {org}/{server}")
    return to_record(Server, row)

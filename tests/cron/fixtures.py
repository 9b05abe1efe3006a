"""
Building the rows the cron tests work on: an organization with servers,
messages with everything that hangs off them, webhooks and the like.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update

from postal.db import messages, organizations, schema as s, servers, webhooks
from postal.db.pool import SynchronousDatabasePool

__all__ = ["Installation", "DAY", "NOW", "count"]

DAY = 86400.0
#: 2026-12-04 10:30:00 UTC
NOW = 1796380200.0


def count(pool: SynchronousDatabasePool, table: Any, *where: Any) -> int:
    with pool.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


class Installation:
    """An organization with one server, and helpers to add rows to it."""

    def __init__(self, pool: SynchronousDatabasePool, org: str = "acme") -> None:
        self.pool = pool
        self.org = pool.call("org", organizations.create_organization_txn, 1.0, org.title(), org, None)
        self.server = self.add_server("Main")

    def add_server(self, name: str) -> servers.Server:
        return self.pool.call("server", servers.create_server_txn, 1.0, self.org.permalink, name, None)

    def execute(self, statement: Any) -> Any:
        with self.pool.engine.begin() as conn:
            result = conn.execute(statement)
            if not statement.is_insert:
                return result.rowcount
            key = result.inserted_primary_key
            return key[0] if key else None

    def store(self, when: float, rcpts: list[str], size: int = 100, server_id: int | None = None,
              ) -> list[messages.StoredMessage]:
        """Store one transaction of C{size} raw bytes for C{rcpts} at C{when}."""
        server = self.server.id if server_id is None else server_id
        raw = b"Subject: Hi\r\n\r\n" + b"x" * max(0, size - 15)
        transaction = messages.NewTransaction(server, raw, [
            messages.NewMessage("outgoing", rcpt, "from@example.com", server, subject="Hi") for rcpt in rcpts
        ])
        return self.pool.call("store", messages.store_transaction_txn, when, transaction)

    def add_activity(self, message_id: int, when: float) -> None:
        """A delivery, a link with a click, a load and a spam check for the message."""
        self.execute(insert(s.deliveries).values(message_id=message_id, status="Sent", sent_with_ssl=False,
                                                 timestamp=when))
        link = self.execute(insert(s.links).values(message_id=message_id, token="t", hash="h",
                                                   url="https://x.test", timestamp=when))
        self.execute(insert(s.clicks).values(message_id=message_id, link_id=link, timestamp=when))
        self.execute(insert(s.loads).values(message_id=message_id, timestamp=when))
        self.execute(insert(s.spam_checks).values(message_id=message_id, score=1.0, code="X"))

    def hold(self, message_id: int, expiry: float | None) -> None:
        self.execute(update(s.messages).where(s.messages.c.id == message_id).values(
            status="Held", held=True, hold_expiry=expiry))

    def add_webhook(self, all_events: bool = True, events: tuple[str, ...] = (),
                    server_id: int | None = None) -> webhooks.Webhook:
        return self.pool.call("webhook", webhooks.create_webhook_txn, 1.0,
                              self.server.id if server_id is None else server_id,
                              "https://hooks.test/", None, all_events, events)

    def webhook_requests(self, event: str | None = None) -> list[Any]:
        query = select(s.webhook_requests).order_by(s.webhook_requests.c.id)
        if event is not None:
            query = query.where(s.webhook_requests.c.event == event)
        with self.pool.engine.connect() as conn:
            return list(conn.execute(query).all())

    def add_domain(self, name: str, server_id: int | None = None, checked_at: float | None = None,
                   key: str = "placeholder", organization_owned: bool = False) -> int:
        """A domain owned by the server (or its organization); by default with no real DKIM key."""
        return int(self.execute(insert(s.domains).values(
            uuid=f"uuid-{name}", organization_id=self.org.id,
            server_id=None if organization_owned else (self.server.id if server_id is None else server_id),
            name=name, verification_method="DNS", verification_token="token", verified_at=1.0,
            dkim_private_key=key, dkim_identifier_string="abcdef", use_for_any=False,
            dns_checked_at=checked_at, created_at=1.0, updated_at=1.0)))

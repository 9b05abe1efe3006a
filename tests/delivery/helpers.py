"""
Accounts and queued messages for delivery tests, made through the real
stores (no hand-built rows).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import attrs
from sqlalchemy import update

from postal.db import schema as s
from postal.db.credentials import create_credential_txn
from postal.db.domains import Domain, create_domain_txn
from postal.db.messages import NewMessage, NewTransaction, StoredMessage, store_transaction_txn
from postal.db.organizations import create_organization_txn
from postal.db.pool import SynchronousDatabasePool
from postal.db.servers import Server, create_server_txn, get_server_txn
from postal.keys import generate_rsa_key_pem

__all__ = ["Account", "make_account", "queue_messages", "dkim_key_pem", "sample_message"]


@lru_cache(maxsize=1)
def dkim_key_pem() -> str:
    """One RSA-2048 key per test run: generating one per test is slow."""
    return generate_rsa_key_pem(2048)


@attrs.frozen
class Account:
    server: Server
    domain: Domain


def make_account(pool: SynchronousDatabasePool, now: float = 1_700_000_000.0, *, mode: str = "Live",
                 dkim_ok: bool = True, send_limit: int | None = None) -> Account:
    org = pool.call("org", create_organization_txn, now, "Acme", "acme", None)
    server = pool.call("server", create_server_txn, now, org.permalink, "Mail", "mail", mode)
    domain = pool.call("domain", create_domain_txn, now, org.id, server.id, "example.com", True, dkim_key_pem())

    def adjust(conn):  # type: ignore[no-untyped-def]
        conn.execute(update(s.domains).where(s.domains.c.id == domain.id).values(
            dkim_status="OK" if dkim_ok else "Missing"))
        conn.execute(update(s.servers).where(s.servers.c.id == server.id).values(send_limit=send_limit))

    pool.call("adjust", adjust)
    from postal.db.domains import get_domain_txn
    return Account(server=pool.call("s", get_server_txn, server.id),
                   domain=pool.call("d", get_domain_txn, domain.id))


def sample_message(subject: str = "Hello", to: str = "user@dest.test") -> bytes:
    return (
        f"From: Sender <sender@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <abc@example.com>\r\n"
        "List-Unsubscribe: <mailto:unsub@example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        "Body line one.\r\n.leading dot\r\n\r\n"
    ).encode()


def queue_messages(pool: SynchronousDatabasePool, account: Account, recipients: Sequence[str],
                   now: float = 1_700_000_000.0, credential_hold: bool = False,
                   raw: bytes | None = None) -> list[StoredMessage]:
    credential_id = None
    if credential_hold:
        credential_id = pool.call("cred", create_credential_txn, now, account.server.id, "SMTP",
                                  None, None, True).id
    transaction = NewTransaction(server_id=account.server.id, raw=raw or sample_message(), messages=[
        NewMessage(scope="outgoing", rcpt_to=r, mail_from="sender@example.com", server_id=account.server.id,
                   subject="Hello", message_id="abc@example.com", domain_id=account.domain.id,
                   credential_id=credential_id)
        for r in recipients
    ])
    return pool.call("store", store_transaction_txn, now, transaction)

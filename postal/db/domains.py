# -*- test-case-name: tests.db.test_accounts -*-
"""Domains: ownership, verification, DKIM keys and DNS check results."""

from __future__ import annotations

import re

import attrs
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import inserted_id, to_record, to_record_or_none
from postal.errors import Conflict, InvalidInput, NotFound
from postal.keys import generate_rsa_key_pem
from postal.tokens import dkim_identifier_string, new_uuid, verification_token

__all__ = [
    "Domain", "DNSCheckResult", "create_domain_txn", "get_domain_txn", "find_domain_txn",
    "domains_for_server_txn", "record_dns_check_txn", "verify_domain_txn", "domains_with_dns_checks_txn",
]

_NAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


@attrs.frozen
class Domain:
    id: int
    uuid: str
    organization_id: int
    server_id: int | None
    name: str
    verification_method: str
    verification_token: str
    verified_at: float | None
    dkim_private_key: str
    dkim_identifier_string: str
    dns_checked_at: float | None
    spf_status: str | None
    spf_error: str | None
    dkim_status: str | None
    dkim_error: str | None
    mx_status: str | None
    mx_error: str | None
    return_path_status: str | None
    return_path_error: str | None
    use_for_any: bool
    dkim_ed25519_private_key: str | None = None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def dkim_selector(self, dkim_identifier: str) -> str:
        """C{postal-xxxxxx}: the selector of this domain's own key."""
        return f"{dkim_identifier}-{self.dkim_identifier_string}"


@attrs.frozen
class DNSCheckResult:
    """Postal's four checks: each status is OK, Missing or Invalid, with an error text."""

    spf_status: str
    spf_error: str | None
    dkim_status: str
    dkim_error: str | None
    mx_status: str
    mx_error: str | None
    return_path_status: str
    return_path_error: str | None

    @property
    def ok(self) -> bool:
        """Postal's C{dns_ok?}: SPF and DKIM OK, MX and return path OK or Missing."""
        return (
            self.spf_status == "OK" and self.dkim_status == "OK"
            and self.mx_status in ("OK", "Missing")
            and self.return_path_status in ("OK", "Missing")
        )


def normalise_domain_name(name: str) -> str:
    try:
        ascii_name = name.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidInput(f"{name!r} is not a valid domain name") from None
    if not _NAME.match(ascii_name):
        raise InvalidInput(f"{name!r} is not a valid domain name")
    return ascii_name


def create_domain_txn(
    conn: Connection, now: float, organization_id: int, server_id: int | None,
    name: str, verified: bool, dkim_key_pem: str | None = None,
) -> Domain:
    """
    Add a domain with a fresh RSA-2048 DKIM key and a C{postal-xxxxxx}
    selector; C{verified} marks it verified at once (operators, tests).
    """
    domain_name = normalise_domain_name(name)
    clash = conn.execute(select(s.domains.c.id).where(
        s.domains.c.organization_id == organization_id,
        s.domains.c.name == domain_name,
        (s.domains.c.server_id == server_id) if server_id is not None else s.domains.c.server_id.is_(None),
    )).first()
    if clash is not None:
        raise Conflict(f"domain {domain_name} already exists here")
    values = dict(
        uuid=new_uuid(), organization_id=organization_id, server_id=server_id, name=domain_name,
        verification_method="DNS", verification_token=verification_token(),
        verified_at=now if verified else None,
        dkim_private_key=dkim_key_pem or generate_rsa_key_pem(2048),
        dkim_identifier_string=dkim_identifier_string(), use_for_any=False,
        created_at=now, updated_at=now,
    )
    domain_id = inserted_id(conn.execute(s.domains.insert().values(**values)))
    return get_domain_txn(conn, domain_id)


def get_domain_txn(conn: Connection, domain_id: int) -> Domain:
    row = conn.execute(select(s.domains).where(s.domains.c.id == domain_id)).first()
    if row is None:
        raise NotFound(f"no domain with id {domain_id}")
    return to_record(Domain, row)


def domains_for_server_txn(conn: Connection, server_id: int, organization_id: int) -> list[Domain]:
    """The server's own domains, then its organization's (server-owned preferred)."""
    rows = conn.execute(
        select(s.domains).where(
            s.domains.c.organization_id == organization_id,
            or_(s.domains.c.server_id == server_id, s.domains.c.server_id.is_(None)),
        ).order_by(s.domains.c.server_id.is_(None), s.domains.c.id)
    ).all()
    return [to_record(Domain, r) for r in rows]


def find_domain_txn(conn: Connection, server_id: int, organization_id: int, name: str) -> Domain:
    domain_name = normalise_domain_name(name)
    for domain in domains_for_server_txn(conn, server_id, organization_id):
        if domain.name == domain_name:
            return domain
    raise NotFound(f"no domain {domain_name} on this server")


def verify_domain_txn(conn: Connection, domain_id: int, now: float) -> None:
    conn.execute(update(s.domains).where(s.domains.c.id == domain_id).values(verified_at=now, updated_at=now))


def record_dns_check_txn(conn: Connection, domain_id: int, now: float, result: DNSCheckResult) -> Domain:
    conn.execute(update(s.domains).where(s.domains.c.id == domain_id).values(
        dns_checked_at=now, updated_at=now, **attrs.asdict(result),
    ))
    return get_domain_txn(conn, domain_id)


def domains_with_dns_checks_txn(conn: Connection, checked_before: float) -> list[Domain]:
    """Domains checked before (Postal re-checks hourly those already checked once)."""
    rows = conn.execute(select(s.domains).where(
        s.domains.c.dns_checked_at.is_not(None), s.domains.c.dns_checked_at <= checked_before,
    )).all()
    return [to_record(Domain, r) for r in rows]


def get_domain_or_none_txn(conn: Connection, domain_id: int) -> Domain | None:
    return to_record_or_none(Domain, conn.execute(select(s.domains).where(s.domains.c.id == domain_id)).first())

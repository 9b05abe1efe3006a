# -*- test-case-name: tests.db.test_accounts -*-
"""Users, organizations and their memberships."""

from __future__ import annotations

import re
from typing import Any

import attrs
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from postal.db import schema as s
from postal.db._rows import inserted_id, to_record, to_record_or_none
from postal.errors import Conflict, InvalidInput, NotFound
from postal.tokens import new_uuid

__all__ = [
    "User", "Organization", "create_user_txn", "create_organization_txn",
    "get_organization_by_permalink_txn", "make_permalink",
]

RESERVED_ORG_PERMALINKS = frozenset(
    {"new", "edit", "remove", "delete", "destroy", "admin", "mail", "org", "server"}
)
_PERMALINK = re.compile(r"^[a-z0-9-]+$")


@attrs.frozen
class User:
    id: int
    uuid: str
    first_name: str
    last_name: str
    email_address: str
    admin: bool


@attrs.frozen
class Organization:
    id: int
    uuid: str
    name: str
    permalink: str
    owner_id: int | None
    suspended_at: float | None
    deleted_at: float | None


def make_permalink(name: str) -> str:
    """Postal's parameterised name: lower case, runs of other characters to '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def check_permalink(permalink: str, reserved: frozenset[str], what: str) -> None:
    if not permalink or not _PERMALINK.match(permalink):
        raise InvalidInput(f"{what} permalink {permalink!r} may only contain a-z, 0-9 and -")
    if permalink in reserved:
        raise InvalidInput(f"{what} permalink {permalink!r} is reserved")


def create_user_txn(
    conn: Connection, now: float, email: str, first_name: str, last_name: str,
    password_digest: str | None, admin: bool,
) -> User:
    if "@" not in email:
        raise InvalidInput(f"e-mail address {email!r} is not valid")
    if not first_name or not last_name:
        raise InvalidInput("first name and last name are required")
    existing = conn.execute(
        select(s.users.c.id).where(s.users.c.email_address == email.lower())
    ).first()
    if existing is not None:
        raise Conflict(f"a user with e-mail address {email} already exists")
    values: dict[str, Any] = dict(
        uuid=new_uuid(), first_name=first_name, last_name=last_name,
        email_address=email.lower(), password_digest=password_digest, admin=admin,
        time_zone="UTC", created_at=now, updated_at=now,
    )
    user_id = inserted_id(conn.execute(s.users.insert().values(**values)))
    return User(id=user_id, uuid=values["uuid"], first_name=first_name, last_name=last_name,
                email_address=email.lower(), admin=admin)


def get_user_by_email_txn(conn: Connection, email: str) -> User | None:
    row = conn.execute(select(s.users).where(s.users.c.email_address == email.lower())).first()
    return to_record_or_none(User, row)


def create_organization_txn(
    conn: Connection, now: float, name: str, permalink: str | None, owner_id: int | None,
) -> Organization:
    if not name.strip():
        raise InvalidInput("organization name is required")
    explicit = permalink is not None
    base = permalink if explicit else make_permalink(name)
    assert base is not None
    check_permalink(base, RESERVED_ORG_PERMALINKS, "organization")
    candidate, n = base, 1
    while conn.execute(
        select(s.organizations.c.id).where(s.organizations.c.permalink == candidate)
    ).first() is not None:
        if explicit:
            raise Conflict(f"organization permalink {candidate!r} is already taken")
        n += 1
        candidate = f"{base}-{n}"
    values = dict(
        uuid=new_uuid(), name=name, permalink=candidate, owner_id=owner_id,
        time_zone="UTC", created_at=now, updated_at=now,
    )
    try:
        org_id = inserted_id(conn.execute(s.organizations.insert().values(**values)))
    except IntegrityError:
        raise Conflict(f"organization permalink {candidate!r} is already taken") from None
    if owner_id is not None:
        conn.execute(s.organization_users.insert().values(
            organization_id=org_id, user_id=owner_id, admin=True, all_servers=True, created_at=now,
        ))
    row = conn.execute(select(s.organizations).where(s.organizations.c.id == org_id)).one()
    return to_record(Organization, row)


def get_organization_by_permalink_txn(conn: Connection, permalink: str) -> Organization:
    row = conn.execute(
        select(s.organizations).where(
            s.organizations.c.permalink == permalink, s.organizations.c.deleted_at.is_(None)
        )
    ).first()
    if row is None:
        raise NotFound(f"no organization with permalink {permalink!r}")
    return to_record(Organization, row)

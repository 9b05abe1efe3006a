# -*- test-case-name: tests.db.test_accounts -*-
"""Credentials: SMTP and API keys, and SMTP-IP networks."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Protocol, Sequence, TypeVar

import attrs
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s
from postal.db._rows import inserted_id, to_record, to_record_or_none
from postal.errors import Conflict, InvalidInput
from postal.tokens import credential_key, new_uuid

__all__ = [
    "Credential", "CREDENTIAL_TYPES", "create_credential_txn", "get_credential_by_key_txn",
    "smtp_credentials_for_server_txn", "smtp_ip_credentials_txn", "touch_credential_txn",
    "credential_for_ip",
]

CREDENTIAL_TYPES = ("API", "SMTP", "SMTP-IP")


@attrs.frozen
class Credential:
    id: int
    uuid: str
    server_id: int
    type: str
    name: str | None
    key: str
    hold: bool


def _check_network(key: str) -> None:
    try:
        ipaddress.ip_network(key, strict=False)
    except ValueError:
        raise InvalidInput(f"SMTP-IP key {key!r} must be an IPv4 or IPv6 address or network") from None


def create_credential_txn(
    conn: Connection, now: float, server_id: int, type: str,
    name: str | None = None, key: str | None = None, hold: bool = False,
) -> Credential:
    if type not in CREDENTIAL_TYPES:
        raise InvalidInput(f"credential type must be one of {', '.join(CREDENTIAL_TYPES)}, not {type!r}")
    if type == "SMTP-IP":
        if not key:
            raise InvalidInput("an SMTP-IP credential needs --key with an address or network")
        _check_network(key)
    elif key is None:
        key = credential_key()
    elif len(key) < 8:
        raise InvalidInput("a credential key must be at least 8 characters")
    clash = conn.execute(select(s.credentials.c.id).where(s.credentials.c.key == key)).first()
    if clash is not None:
        raise Conflict("that credential key is already in use")
    values: dict[str, Any] = dict(uuid=new_uuid(), server_id=server_id, type=type, name=name, key=key,
                  hold=hold, created_at=now)
    cred_id = inserted_id(conn.execute(s.credentials.insert().values(**values)))
    return Credential(id=cred_id, uuid=values["uuid"], server_id=server_id, type=type,
                      name=name, key=key, hold=hold)


def get_credential_by_key_txn(conn: Connection, key: str, type: str) -> Credential | None:
    row = conn.execute(
        select(s.credentials).where(s.credentials.c.key == key, s.credentials.c.type == type)
    ).first()
    return to_record_or_none(Credential, row)


def smtp_credentials_for_server_txn(conn: Connection, server_id: int) -> list[Credential]:
    rows = conn.execute(
        select(s.credentials).where(
            s.credentials.c.server_id == server_id, s.credentials.c.type == "SMTP"
        )
    ).all()
    return [to_record(Credential, r) for r in rows]


def smtp_ip_credentials_txn(conn: Connection) -> list[Credential]:
    rows = conn.execute(select(s.credentials).where(s.credentials.c.type == "SMTP-IP")).all()
    return [to_record(Credential, r) for r in rows]


class _HasKey(Protocol):
    @property
    def key(self) -> str: ...


_C = TypeVar("_C", bound=_HasKey)


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=4096)
def _network(key: str) -> _Network | None:
    try:
        return ipaddress.ip_network(key, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _address(address: str) -> _Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def credential_for_ip(credentials: Sequence[_C], address: str) -> _C | None:
    """
    The SMTP-IP credential whose network contains C{address}, most specific
    first; IPv4 networks also match IPv4-mapped IPv6 addresses.  (Runs for
    every RCPT: parsed addresses and networks are remembered.)
    """
    ip = _address(address)
    if ip is None:
        return None
    best: tuple[int, _C] | None = None
    for credential in credentials:
        network = _network(credential.key)
        if network is None or ip.version != network.version or ip not in network:
            continue
        if best is None or network.prefixlen > best[0]:
            best = (network.prefixlen, credential)
    return None if best is None else best[1]


def touch_credential_txn(conn: Connection, credential_id: int, now: float) -> None:
    conn.execute(update(s.credentials).where(s.credentials.c.id == credential_id).values(last_used_at=now))

# -*- test-case-name: tests.delivery.test_mx -*-
"""
Where mail for a domain goes: relays when C{postal.smtp_relays} is set,
else the domain's MX hosts by preference (random among equals), else the
domain itself (implicit MX); each host's addresses AAAA first, then A.
A Null MX (RFC 7505) and a domain that does not exist are permanent
failures; a lookup that cannot be answered now is temporary.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

import attrs

from postal.dns import DNSTemporaryFailure, IResolver, MXRecord, NonexistentDomain

__all__ = ["Relay", "Target", "parse_relay", "order_mx", "mail_hosts", "resolve_targets", "NullMX",
           "NoSuchDomain", "TemporaryLookupFailure"]


class NullMX(Exception):
    """The domain publishes a Null MX: it accepts no mail."""


class NoSuchDomain(Exception):
    """The domain does not exist (NXDOMAIN)."""


class TemporaryLookupFailure(Exception):
    """DNS could not answer now (SERVFAIL, timeout)."""


@attrs.frozen
class Relay:
    host: str
    port: int = 25
    ssl_mode: str = "Auto"


@attrs.frozen
class Target:
    """One address to try, with the host name it belongs to (for TLS and details)."""

    hostname: str
    address: str
    port: int
    ssl_mode: str


def parse_relay(url: str) -> Relay:
    """C{smtp://host:port?ssl_mode=Auto} (port 25 and Auto by default)."""
    parts = urlsplit(url if "://" in url else f"smtp://{url}")
    mode = parse_qs(parts.query).get("ssl_mode", ["Auto"])[0]
    return Relay(host=parts.hostname or "", port=parts.port or 25, ssl_mode=mode)


def order_mx(records: Sequence[MXRecord], shuffle: Callable[[list[str]], None] = random.shuffle) -> list[str]:
    """Hosts by preference, shuffled among equal preferences."""
    by_priority: dict[int, list[str]] = {}
    for record in records:
        by_priority.setdefault(record.priority, []).append(record.host)
    hosts: list[str] = []
    for priority in sorted(by_priority):
        group = by_priority[priority]
        shuffle(group)
        hosts.extend(group)
    return hosts


async def mail_hosts(resolver: IResolver, domain: str,
                     shuffle: Callable[[list[str]], None] = random.shuffle) -> list[str]:
    """
    The hosts to try for C{domain}.
    @raise NullMX, NoSuchDomain, TemporaryLookupFailure: as named.
    """
    try:
        records = await resolver.lookup_mx(domain)
    except NonexistentDomain as e:
        raise NoSuchDomain(str(e)) from e
    except DNSTemporaryFailure as e:
        raise TemporaryLookupFailure(str(e)) from e
    if not records:
        return [domain]
    if any(r.host in ("", ".") for r in records):
        raise NullMX(f"{domain} publishes a null MX (RFC 7505)")
    return order_mx(records, shuffle)


async def host_addresses(resolver: IResolver, host: str) -> list[str]:
    """AAAA then A addresses of C{host}; a literal address stands for itself; lookup errors give none."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    addresses: list[str] = []
    for lookup in (resolver.lookup_aaaa, resolver.lookup_a):
        try:
            addresses.extend(r.address for r in await lookup(host))
        except (NonexistentDomain, DNSTemporaryFailure):
            continue
    return addresses


async def resolve_targets(resolver: IResolver, domain: str, relays: Sequence[Relay], mx_port: int = 25,
                          shuffle: Callable[[list[str]], None] = random.shuffle) -> list[Target]:
    """Every address to try for mail to C{domain}, in order."""
    targets: list[Target] = []
    if relays:
        for relay in relays:
            for address in await host_addresses(resolver, relay.host):
                targets.append(Target(relay.host, address, relay.port, relay.ssl_mode))
        return targets
    for host in await mail_hosts(resolver, domain, shuffle):
        for address in await host_addresses(resolver, host):
            targets.append(Target(host, address, mx_port, "Auto"))
    return targets

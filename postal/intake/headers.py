# -*- test-case-name: tests.intake.test_headers -*-
"""
Header work at the end of DATA: reading the header block, Postal's
Received header, loop detection and From/Sender authorisation.
"""

from __future__ import annotations

import email.utils
import re
from functools import lru_cache
from typing import Sequence

from postal.clock import utc_datetime
from postal.intake.values import DomainInfo

__all__ = [
    "parse_headers", "received_header", "is_loop", "authorised_domain",
    "header_addresses", "MAX_OUR_RECEIVED",
]

#: Postal's limit: more than this many Received headers naming us is a loop.
MAX_OUR_RECEIVED = 4

_SANITISE = re.compile(r"[\x00-\x1f\x7f()\[\];]")


def parse_headers(raw: bytes) -> list[tuple[str, str]]:
    """
    The header fields of C{raw} as C{(lower-case name, unfolded value)}, in
    order; decoding is lenient (headers may hold 8-bit or UTF-8 text).
    """
    end = raw.find(b"\r\n\r\n")
    block = raw if end < 0 else raw[:end]
    if raw.startswith(b"\r\n"):
        return []
    fields: list[tuple[str, str]] = []
    for line in block.decode("utf-8", "replace").split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if colon and name and " " not in name:
            fields.append((name.strip().lower(), value.strip()))
    return fields


def header_values(fields: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [value for field, value in fields if field == name]


def header_addresses(fields: Sequence[tuple[str, str]], name: str) -> list[str]:
    """Every address in every C{name} header (C{From} may list several)."""
    values = header_values(fields, name)
    return [address for _, address in email.utils.getaddresses(values) if address]


@lru_cache(maxsize=4)
def _date(second: int) -> str:
    # One message after another within a second share the text.
    return email.utils.format_datetime(utc_datetime(second))


def received_header(
    helo: str | None, client_ip: str, smtp_hostname: str, now: float, privacy: bool,
) -> bytes:
    """
    Postal's C{Received:} line; privacy mode (on the authenticated server)
    leaves out where the message came from.
    """
    date = _date(int(now))
    if privacy:
        text = f"Received: by {smtp_hostname} with SMTP; {date}"
    else:
        name = _SANITISE.sub("", helo or "unknown")[:255] or "unknown"
        text = f"Received: from {name} ({client_ip} [{client_ip}]) by {smtp_hostname} with SMTP; {date}"
    return text.encode("utf-8") + b"\r\n"


def is_loop(fields: Sequence[tuple[str, str]], smtp_hostname: str) -> bool:
    """True when more than L{MAX_OUR_RECEIVED} Received headers say C{by <us>}."""
    marker = f"by {smtp_hostname}".lower()
    ours = sum(1 for value in header_values(fields, "received") if marker in value.lower())
    return ours > MAX_OUR_RECEIVED


def _domain_for(address: str, domains: Sequence[DomainInfo]) -> DomainInfo | None:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = domain.lower()
    for candidate in domains:
        if candidate.name == domain:
            return candidate
    for candidate in domains:
        if candidate.use_for_any:
            return candidate
    return None


def _all_authorised(addresses: Sequence[str], domains: Sequence[DomainInfo]) -> DomainInfo | None:
    found = [_domain_for(address, domains) for address in addresses]
    if not found or any(domain is None for domain in found):
        return None
    return found[0]


def authorised_domain(
    fields: Sequence[tuple[str, str]], domains: Sequence[DomainInfo], allow_sender: bool,
) -> DomainInfo | None:
    """
    The verified domain that authorises this message: every From address
    must be in one, or (with C{allow_sender}) every Sender address.
    """
    domain = _all_authorised(header_addresses(fields, "from"), domains)
    if domain is None and allow_sender:
        domain = _all_authorised(header_addresses(fields, "sender"), domains)
    return domain

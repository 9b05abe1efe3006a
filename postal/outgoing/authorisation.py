# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
From/Sender authorisation: a server may send only from its verified
domains (its own or its organization's), as Postal's
C{Server#authenticated_domain_for_address} and
C{find_authenticated_domain_from_headers} decide.
"""

from __future__ import annotations

from typing import Protocol, Sequence, TypeVar

from postal.outgoing.addresses import address_domain, strip_name_from_address

__all__ = ["authenticated_domain_for_address", "authenticated_domain_from_headers"]


class _Domain(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def use_for_any(self) -> bool: ...


_D = TypeVar("_D", bound=_Domain)


def authenticated_domain_for_address(domains: Sequence[_D], address: str | None) -> _D | None:
    """
    The verified domain C{address} may be sent from: the domain of its
    address part, else a domain marked "use for any"; None when neither.
    C{domains} are the server's verified domains, server-owned first.
    """
    if not address:
        return None
    domain_name = address_domain(strip_name_from_address(address))
    if domain_name is None:
        return None
    for domain in domains:
        if domain.name == domain_name:
            return domain
    for domain in sorted(domains, key=lambda d: d.name):
        if domain.use_for_any:
            return domain
    return None


def authenticated_domain_from_headers(
    domains: Sequence[_D], from_addresses: Sequence[str], sender_addresses: Sequence[str],
    allow_sender: bool,
) -> _D | None:
    """
    Every From address must be authorised (or, when the server allows it,
    every Sender address); the first one's domain is returned.
    """
    candidates = [from_addresses]
    if allow_sender:
        candidates.append(sender_addresses)
    for addresses in candidates:
        values = list(addresses) or [""]
        found = [authenticated_domain_for_address(domains, value) for value in values]
        authorised = [d for d in found if d is not None]
        if len(authorised) == len(values):
            return authorised[0]
    return None

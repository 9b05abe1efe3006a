# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
E-mail addresses as Postal's API treats them: display names and comments
stripped with Postal's own (forgiving) rules, lists split on commas.
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["strip_name_from_address", "split_address_list", "address_domain"]

_THROUGH_OPEN = re.compile(r".*<", re.DOTALL)
_FROM_CLOSE = re.compile(r">.*", re.DOTALL)
_COMMENT = re.compile(r"\(.+?\)", re.DOTALL)
_LIST_SEPARATOR = re.compile(r",\s*")


def strip_name_from_address(address: str) -> str:
    """
    C{"Name <a@b>"} to C{"a@b"}: drop everything through the last C{<},
    from the first following C{>} on, and any C{(comment)}, then strip;
    case is kept (Postal's C{strip_name_from_address}).
    """
    bare = _THROUGH_OPEN.sub("", address, count=1)
    bare = _FROM_CLOSE.sub("", bare, count=1)
    return _COMMENT.sub("", bare).strip()


def split_address_list(value: str | Sequence[str] | None) -> list[str]:
    """A string is split on commas (Postal's C{/,\\s*/}); a list is taken as is."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = _LIST_SEPARATOR.split(value)
        while parts and parts[-1] == "":
            parts.pop()  # Ruby's split drops trailing empty fields
        return parts
    return list(value)


def address_domain(address: str) -> str | None:
    """The lower-cased domain of a bare address, or None when it has no C{local@domain} form."""
    local, at, domain = address.partition("@")
    if not at or not local or not domain:
        return None
    return domain.strip().lower()

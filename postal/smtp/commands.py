# -*- test-case-name: tests.smtp.test_commands -*-
"""
Parsing SMTP command lines: the verb, and the C{MAIL FROM:<path> params} /
C{RCPT TO:<path> params} arguments (RFC 5321 section 4.1, RFC 1870/6152/6531).
"""

from __future__ import annotations

import attrs

__all__ = ["Command", "PathArgument", "parse_command", "parse_path", "CommandSyntaxError"]


class CommandSyntaxError(ValueError):
    """The argument of MAIL or RCPT cannot be parsed."""


@attrs.frozen
class Command:
    verb: str  # upper case
    argument: str


@attrs.frozen
class PathArgument:
    """The address inside C{<>} and the ESMTP parameters after it (keys upper case)."""

    address: str
    parameters: dict[str, str | None]


def parse_command(line: str) -> Command:
    verb, _, argument = line.strip().partition(" ")
    return Command(verb.upper(), argument.strip())


def _parameters(text: str) -> dict[str, str | None]:
    parameters: dict[str, str | None] = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        if not key:
            raise CommandSyntaxError(word)
        parameters[key.upper()] = value if eq else None
    return parameters


def parse_path(argument: str, keyword: str) -> PathArgument:
    """
    C{FROM:<a@b> SIZE=10} to its address and parameters.  Like Postal, the
    address is what is inside the angle brackets; a bare address is accepted.

    @raise CommandSyntaxError: the keyword or the brackets are missing or wrong.
    """
    head, colon, rest = argument.partition(":")
    if not colon or head.strip().upper() != keyword:
        raise CommandSyntaxError(argument)
    rest = rest.strip()
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            raise CommandSyntaxError(argument)
        address, tail = rest[1:end], rest[end + 1:]
    else:
        address, _, tail = rest.partition(" ")
    address = address.strip()
    if address.startswith("@") and ":" in address:
        address = address.partition(":")[2]  # source route (RFC 5321 C.): ignored
    if any(c in address for c in "<> \t"):
        raise CommandSyntaxError(argument)
    return PathArgument(address, _parameters(tail))

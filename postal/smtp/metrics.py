# -*- test-case-name: tests.smtp.test_protocol -*-
"""Postal's SMTP server metrics (postal-behaviour.md section 15.1)."""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import Counter

__all__ = ["CONNECTIONS", "TLS_CONNECTIONS", "EXCEPTIONS", "COMMANDS", "CLIENT_ERRORS", "MESSAGES", "labelled"]


@lru_cache(maxsize=512)
def labelled(counter: Counter, *values: str) -> Counter:
    """
    C{counter.labels(*values)}, remembered: the label values on per-command
    and per-message paths come from small fixed sets, and prometheus_client's
    own lookup (a lock and a tuple of strings each time) showed in profiles.
    """
    return counter.labels(*values)

CONNECTIONS = Counter(
    "postal_smtp_server_connections", "SMTP connections accepted.")
TLS_CONNECTIONS = Counter(
    "postal_smtp_server_tls_connections", "SMTP connections that started TLS.")
EXCEPTIONS = Counter(
    "postal_smtp_server_exceptions", "Unexpected errors while serving SMTP.", ["type", "error"])
COMMANDS = Counter(
    "postal_smtp_server_commands", "SMTP commands received.", ["command"])
CLIENT_ERRORS = Counter(
    "postal_smtp_server_client_errors", "SMTP client errors by kind.", ["error"])
MESSAGES = Counter(
    "postal_smtp_server_messages", "Messages accepted over SMTP.", ["type", "tls"])

# -*- test-case-name: tests.intake.test_recipients -*-
"""
Why intake refuses something.  Each reason is Postal's client-error label
(postal-behaviour.md section 15.1); the SMTP layer maps it to a reply.
"""

from __future__ import annotations

from postal.errors import PostalError, RejectedRecipient

__all__ = [
    "RecipientRejected", "MessageRejected", "AuthenticationFailed",
    "INVALID_SERVER_TOKEN", "SERVER_SUSPENDED", "INVALID_ROUTE_TOKEN", "ROUTE_REJECTED",
    "AUTHENTICATION_REQUIRED", "LOOP_DETECTED", "FROM_NAME_INVALID", "INVALID_CREDENTIALS",
]

INVALID_SERVER_TOKEN = "invalid-server-token"
SERVER_SUSPENDED = "server-suspended"
INVALID_ROUTE_TOKEN = "invalid-route-token"
ROUTE_REJECTED = "route-rejected"
AUTHENTICATION_REQUIRED = "authentication-required"
LOOP_DETECTED = "loop-detected"
FROM_NAME_INVALID = "from-name-invalid"
INVALID_CREDENTIALS = "invalid-credentials"


class RecipientRejected(RejectedRecipient):
    """RCPT TO refused; C{reason} is one of the constants above."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MessageRejected(PostalError):
    """The message (end of DATA) refused; C{reason} is one of the constants above."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthenticationFailed(PostalError):
    """The credential given to AUTH is not valid (or its server is suspended)."""

    def __init__(self, reason: str = INVALID_CREDENTIALS) -> None:
        super().__init__(reason)
        self.reason = reason

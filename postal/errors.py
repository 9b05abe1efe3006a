# -*- test-case-name: tests.test_errors -*-
"""
The error types every layer shares.  Only protocol code maps them to SMTP
reply codes, API error codes or CLI exit statuses.
"""

from __future__ import annotations

__all__ = [
    "PostalError", "NotFound", "Conflict", "InvalidInput",
    "RejectedRecipient", "RateLimited", "TemporaryDeliveryFailure", "PermanentDeliveryFailure",
]


class PostalError(Exception):
    """Base of every error this project raises on purpose."""


class NotFound(PostalError):
    """The named thing does not exist."""


class Conflict(PostalError):
    """The thing to create already exists (a unique name or key is taken)."""


class InvalidInput(PostalError):
    """A value given by a user or client is not acceptable; the message says why."""


class RejectedRecipient(PostalError):
    """A recipient cannot be accepted."""


class RateLimited(PostalError):
    """Too much, too fast: try again later."""


class TemporaryDeliveryFailure(PostalError):
    """Delivery failed in a way that may succeed later (SoftFail)."""


class PermanentDeliveryFailure(PostalError):
    """Delivery failed for good (HardFail)."""

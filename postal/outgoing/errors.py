# -*- test-case-name: tests.web.test_api_v1 -*-
"""
Why an API request was refused.  The web layer maps each type to Postal's
error code and message text; nothing here knows about HTTP or JSON.
"""

from __future__ import annotations

from postal.errors import InvalidInput, NotFound, PostalError

__all__ = [
    "SendRejected", "NoRecipients", "TooManyAddresses", "NoContent", "FromAddressMissing",
    "UnauthenticatedFromAddress", "AttachmentMissingName", "AttachmentMissingData",
    "InvalidBase64", "MessageNotFound", "InvalidParameter", "ParameterMissing",
    "AccessDenied", "InvalidServerAPIKey", "ServerSuspended",
]


class SendRejected(PostalError):
    """A send request that cannot be accepted as it is."""


class NoRecipients(SendRejected):
    """To, CC and BCC are all empty."""


class TooManyAddresses(SendRejected):
    """More than 50 addresses in one field; C{field} is C{To}, C{CC} or C{BCC}."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class NoContent(SendRejected):
    """Neither a plain nor an HTML body."""


class FromAddressMissing(SendRejected):
    """No From address."""


class UnauthenticatedFromAddress(SendRejected):
    """The From (or Sender) domain is not a verified domain of the server."""


class AttachmentMissingName(SendRejected):
    """An attachment has no name."""


class AttachmentMissingData(SendRejected):
    """An attachment has no data."""


class InvalidBase64(SendRejected):
    """Data that must be base64 is not; C{what} names it for the client."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class InvalidParameter(InvalidInput):
    """A parameter has the wrong type or form; C{name} is the parameter."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class ParameterMissing(InvalidInput):
    """A required parameter is missing or blank."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class MessageNotFound(NotFound):
    """The server has no message with the id asked for."""


class AccessDenied(PostalError):
    """No API key was given."""


class InvalidServerAPIKey(PostalError):
    """No API credential has the key given; C{key} is that key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class ServerSuspended(PostalError):
    """The credential's server (or its organization) is suspended."""

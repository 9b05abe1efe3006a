# -*- test-case-name: tests.web.test_api_v1 -*-
"""
Postal's API envelope C{{status, time, flags, data}} (always HTTP 200) and
the mapping from logic error types to Postal's error codes and texts.
"""

from __future__ import annotations

import json
from typing import Any

from postal.outgoing import errors

__all__ = [
    "envelope", "success", "error", "parameter_error", "error_for", "encode_json",
    "InvalidJSON", "RequestTooLarge",
]


class InvalidJSON(Exception):
    """The body (or the C{params} field) is not a JSON object; C{where} says which."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


class RequestTooLarge(Exception):
    """The request body is over the configured maximum of C{limit} bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


_SEND_ERRORS: dict[type[Exception], tuple[str, str | None]] = {
    errors.NoRecipients: ("NoRecipients", "There are no recipients defined to receive this message"),
    errors.NoContent: ("NoContent", "There is no content defined for this e-mail"),
    errors.FromAddressMissing: ("FromAddressMissing", "The From address is missing and is required"),
    errors.UnauthenticatedFromAddress: (
        "UnauthenticatedFromAddress", "The From address is not authorised to send mail from this server"),
    errors.AttachmentMissingName: ("AttachmentMissingName", "An attachment is missing a name"),
    errors.AttachmentMissingData: ("AttachmentMissingData", "An attachment is missing data"),
}


def envelope(status: str, elapsed: float, data: Any) -> dict[str, Any]:
    return {"status": status, "time": round(elapsed, 3), "flags": {}, "data": data}


def success(elapsed: float, data: Any) -> dict[str, Any]:
    return envelope("success", elapsed, data)


def error(elapsed: float, code: str, **data: Any) -> dict[str, Any]:
    return envelope("error", elapsed, {**data, "code": code})


def parameter_error(elapsed: float, message: str) -> dict[str, Any]:
    return envelope("parameter-error", elapsed, {"message": message})


def error_for(exception: Exception, elapsed: float, raw_send: bool = False) -> dict[str, Any] | None:
    """
    The envelope for a known error, or None.  C{raw_send}: C{send/raw}
    answers C{UnauthenticatedFromAddress} without a message, as Postal does.
    """
    if isinstance(exception, errors.ParameterMissing):
        return parameter_error(elapsed, f"`{exception.name}` parameter is required but is missing")
    if isinstance(exception, errors.InvalidParameter):
        return parameter_error(elapsed, f"`{exception.name}` parameter {exception.reason}")
    if isinstance(exception, errors.AccessDenied):
        return error(elapsed, "AccessDenied", message="Must be authenticated as a server.")
    if isinstance(exception, errors.InvalidServerAPIKey):
        return error(elapsed, "InvalidServerAPIKey",
                     message="The API token provided in X-Server-API-Key was not valid.", token=exception.key)
    if isinstance(exception, errors.ServerSuspended):
        return error(elapsed, "ServerSuspended")
    if isinstance(exception, errors.TooManyAddresses):
        return error(elapsed, f"TooMany{exception.field}Addresses",
                     message=f"The maximum number of {exception.field} addresses has been reached (maximum 50)")
    if raw_send and isinstance(exception, errors.UnauthenticatedFromAddress):
        return error(elapsed, "UnauthenticatedFromAddress")
    if type(exception) in _SEND_ERRORS:
        code, message = _SEND_ERRORS[type(exception)]
        return error(elapsed, code, message=message)
    if isinstance(exception, errors.InvalidBase64):
        return error(elapsed, "InvalidBase64", message=f"The {exception.what} is not valid base64")
    if isinstance(exception, InvalidJSON):
        return error(elapsed, "InvalidJSON", message=f"The {exception.where} is not a valid JSON object")
    if isinstance(exception, RequestTooLarge):
        return error(elapsed, "RequestTooLarge",
                     message=f"The request body is larger than the maximum of {exception.limit} bytes")
    return None


def encode_json(value: Any) -> bytes:
    """Compact JSON in UTF-8, as Rails renders it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

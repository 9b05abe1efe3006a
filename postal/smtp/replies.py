# -*- test-case-name: tests.smtp.test_session -*-
"""
Every reply the server sends, as named constants: Postal's texts
(postal-behaviour.md section 4.2) with RFC 3463 enhanced status codes, which
RFC 2034 requires on every reply once ENHANCEDSTATUSCODES is advertised
(except the greeting and the EHLO/HELO replies, which carry none).
"""

from __future__ import annotations

import attrs

__all__ = ["Reply"]


@attrs.frozen
class Reply:
    """An SMTP reply: a code, an optional enhanced code, one or more lines."""

    code: int
    enhanced: str | None
    lines: tuple[str, ...]
    _wire: bytes = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # Replies are constants sent many times: encode once.
        prefix = f"{self.enhanced} " if self.enhanced else ""
        out = []
        last = len(self.lines) - 1
        for index, line in enumerate(self.lines):
            separator = " " if index == last else "-"
            out.append(f"{self.code}{separator}{prefix}{line}\r\n")
        object.__setattr__(self, "_wire", "".join(out).encode("utf-8"))

    def to_bytes(self) -> bytes:
        return self._wire

    @property
    def positive(self) -> bool:
        return self.code < 400


def reply(code: int, enhanced: str | None, *lines: str) -> Reply:
    return Reply(code, enhanced, tuple(lines) or ("",))


R220_READY_TLS = reply(220, "2.0.0", "Ready to start TLS")
R221_BYE = reply(221, "2.0.0", "Closing Connection")
R235_GRANTED = "Granted for {path}"  # formatted by L{granted}
R250_OK = reply(250, "2.0.0", "OK")
R250_SENDER_OK = reply(250, "2.1.0", "OK")
R250_RECIPIENT_OK = reply(250, "2.1.5", "OK")
R250_QUEUED = reply(250, "2.0.0", "OK")
R334_EMPTY = Reply(334, None, ("",))
R334_USERNAME = reply(334, None, "VXNlcm5hbWU6")
R334_PASSWORD = reply(334, None, "UGFzc3dvcmQ6")
R354_GO_AHEAD = reply(354, None, "Go ahead")
R421_TIMEOUT = reply(421, "4.4.2", "Timeout, closing connection")
R421_TOO_MANY_CONNECTIONS = reply(421, "4.7.0", "Too many connections, try again later")
R421_TOO_MANY_AUTH_FAILURES = reply(421, "4.7.0", "Too many authentication failures, closing connection")
R421_SHUTTING_DOWN = reply(421, "4.3.2", "Service shutting down, closing connection")
R451_LOCAL_ERROR = reply(451, "4.3.0", "Temporary error storing the message, try again later")
R451_LOOKUP_ERROR = reply(451, "4.3.0", "Temporary error, try again later")
R452_TOO_MANY_RECIPIENTS = reply(452, "4.5.3", "Too many recipients")
R500_LINE_TOO_LONG = reply(500, "5.5.2", "Line too long")
R500_BAD_CHARACTERS = reply(500, "5.5.2", "Invalid characters in command")
R501_SYNTAX = reply(501, "5.5.4", "Syntax error in parameters or arguments")
R501_MAIL_FROM_SYNTAX = reply(501, "5.1.7", "Invalid MAIL FROM")
R501_EMPTY_RCPT = reply(501, "5.1.3", "RCPT TO should not be empty")
R501_INVALID_RCPT = reply(501, "5.1.3", "Invalid RCPT TO")
R501_AUTH_CANCELLED = reply(501, "5.0.0", "Authentication cancelled")
R501_BAD_BASE64 = reply(501, "5.5.2", "Invalid base64 data")
R502_INVALID_COMMAND = reply(502, "5.5.2", "Invalid/unsupported command")
R502_PROXY_ERROR = reply(502, "5.5.2", "Proxy Error")
R502_TLS_UNAVAILABLE = reply(502, "5.5.1", "TLS not available")
R503_HELO_FIRST = reply(503, "5.5.1", "EHLO/HELO first please")
R503_MAIL_FIRST = reply(503, "5.5.1", "EHLO/HELO and MAIL FROM first please")
R503_DATA_OUT_OF_ORDER = reply(503, "5.5.1", "HELO/EHLO, MAIL FROM and RCPT TO before sending data")
R503_ALREADY_AUTHENTICATED = reply(503, "5.5.1", "Already authenticated")
R503_DATA_AFTER_BDAT = reply(503, "5.5.1", "DATA not allowed after BDAT")
R503_AUTH_IN_TRANSACTION = reply(503, "5.5.1", "AUTH not permitted during a mail transaction")
R504_UNKNOWN_MECHANISM = reply(504, "5.5.4", "Unrecognized authentication type")
R530_AUTHENTICATION_REQUIRED = reply(530, "5.7.1", "Authentication required")
R530_STARTTLS_FIRST = reply(530, "5.7.0", "Must issue a STARTTLS command first")
R530_FROM_NAME_INVALID = reply(530, "5.7.1", "From/Sender name is not valid")
R535_PROTOCOL_ERROR = reply(535, "5.7.8", "Authenticated failed - protocol error")
R535_INVALID_CREDENTIAL = reply(535, "5.7.8", "Invalid credential")
R535_DENIED = reply(535, "5.7.8", "Denied")
R535_SERVER_SUSPENDED = reply(535, "5.7.1", "Mail server has been suspended")
R550_INVALID_SERVER_TOKEN = reply(550, "5.1.1", "Invalid server token")
R550_INVALID_ROUTE_TOKEN = reply(550, "5.1.1", "Invalid route token")
R550_ROUTE_REJECTS = reply(550, "5.7.1", "Route does not accept incoming messages")
R550_LOOP_DETECTED = reply(550, "5.4.6", "Loop detected")
R552_SIZE_DECLARED = "Message size exceeds fixed maximum message size ({limit}MB)"
R552_TOO_LARGE = "Message too large (maximum size {limit}MB)"
R555_UNKNOWN_PARAMETER = reply(555, "5.5.4", "Unsupported MAIL FROM or RCPT TO parameter")


#: Returned for a command whose reply comes later (BDAT: after its chunk).
NO_REPLY = Reply(0, None, ())


def chunk_received(size: int) -> Reply:
    return reply(250, "2.0.0", f"{size} octets received")


def greeting(hostname: str, trace_id: str) -> Reply:
    """Postal's banner: C{220 <smtp_hostname> ESMTP Postal/<trace_id>}."""
    return reply(220, None, f"{hostname} ESMTP Postal/{trace_id}")


def helo(hostname: str) -> Reply:
    return reply(250, None, hostname)


def ehlo(capabilities: list[str]) -> Reply:
    return reply(250, None, "My capabilities are", *capabilities)


def granted(path: str) -> Reply:
    return reply(235, "2.7.0", R235_GRANTED.format(path=path))


def challenge(data: str) -> Reply:
    return reply(334, None, data)


def size_declared_too_large(limit_mb: int) -> Reply:
    return reply(552, "5.3.4", R552_SIZE_DECLARED.format(limit=limit_mb))


def too_large(limit_mb: int) -> Reply:
    return reply(552, "5.3.4", R552_TOO_LARGE.format(limit=limit_mb))

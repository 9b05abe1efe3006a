# -*- test-case-name: tests.smtp.test_protocol -*-
"""
How refusals become replies and metrics: intake's reasons to Postal's SMTP
replies, and each error reply to Postal's C{client_errors} label.
"""

from __future__ import annotations

from postal.intake import errors as e
from postal.smtp import replies as r
from postal.smtp.metrics import CLIENT_ERRORS
from postal.smtp.replies import Reply

__all__ = ["ERROR_LABELS", "REJECTIONS", "count_reply"]

ERROR_LABELS = {
    r.R502_INVALID_COMMAND: "invalid-command", r.R502_TLS_UNAVAILABLE: "tls-unavailable",
    r.R535_PROTOCOL_ERROR: "missing-credentials", r.R535_INVALID_CREDENTIAL: "invalid-credentials",
    r.R535_DENIED: "invalid-credentials", r.R503_HELO_FIRST: "mail-from-out-of-order",
    r.R503_MAIL_FIRST: "rcpt-to-out-of-order", r.R501_EMPTY_RCPT: "empty-rcpt-to",
    r.R501_INVALID_RCPT: "invalid-rcpt-to", r.R535_SERVER_SUSPENDED: "server-suspended",
    r.R550_INVALID_SERVER_TOKEN: "invalid-server-token", r.R550_INVALID_ROUTE_TOKEN: "invalid-route-token",
    r.R550_ROUTE_REJECTS: "route-rejected", r.R530_AUTHENTICATION_REQUIRED: "authentication-required",
    r.R503_DATA_OUT_OF_ORDER: "data-out-of-order", r.R550_LOOP_DETECTED: "loop-detected",
    r.R530_FROM_NAME_INVALID: "from-name-invalid", r.R452_TOO_MANY_RECIPIENTS: "too-many-recipients",
}

#: Intake's refusals (reason constants) to Postal's replies.
REJECTIONS = {
    e.INVALID_SERVER_TOKEN: r.R550_INVALID_SERVER_TOKEN, e.SERVER_SUSPENDED: r.R535_SERVER_SUSPENDED,
    e.INVALID_ROUTE_TOKEN: r.R550_INVALID_ROUTE_TOKEN, e.ROUTE_REJECTED: r.R550_ROUTE_REJECTS,
    e.AUTHENTICATION_REQUIRED: r.R530_AUTHENTICATION_REQUIRED,
    e.LOOP_DETECTED: r.R550_LOOP_DETECTED, e.FROM_NAME_INVALID: r.R530_FROM_NAME_INVALID,
}


def count_reply(reply: Reply) -> Reply:
    """Count C{reply} under its client-error label, if it has one; return it."""
    label = ERROR_LABELS.get(reply)
    if label is not None:
        CLIENT_ERRORS.labels(label).inc()
    elif reply.code == 552:
        CLIENT_ERRORS.labels("message-too-large").inc()
    return reply

# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
The values API requests become once the protocol layer has parsed them,
and what sending answers.
"""

from __future__ import annotations

import attrs

__all__ = ["AttachmentSpec", "SendMessageRequest", "SendRawRequest", "SentMessage", "SendResult"]


@attrs.frozen
class AttachmentSpec:
    """An attachment as sent: C{data} is base64 text (None or blank when missing)."""

    name: str | None
    content_type: str | None
    data: str | None


@attrs.frozen
class SendMessageRequest:
    """C{send/message}: the parameters, typed; lists keep their order and duplicates."""

    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    from_: str | None = None
    sender: str | None = None
    subject: str | None = None
    reply_to: str | None = None
    plain_body: str | None = None
    html_body: str | None = None
    tag: str | None = None
    bounce: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[AttachmentSpec, ...] = ()


@attrs.frozen
class SendRawRequest:
    """C{send/raw}: envelope recipients, envelope sender and base64 message data."""

    rcpt_to: tuple[str, ...]
    mail_from: str
    data: str
    bounce: bool = False


@attrs.frozen
class SentMessage:
    """One message made for one address."""

    address: str
    id: int
    token: str


@attrs.frozen
class SendResult:
    """C{message_id} has no angle brackets; C{messages} are in creation order."""

    message_id: str | None
    messages: tuple[SentMessage, ...]

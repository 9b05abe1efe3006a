# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
Reading a stored raw message for the API's expansions: the plain and HTML
bodies, the attachments and the decoded headers.  Any message, however
malformed, yields an answer rather than an exception.
"""

from __future__ import annotations

import base64
import hashlib
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

import attrs

__all__ = ["ParsedAttachment", "ParsedMessage", "parse_message", "ruby_base64"]


@attrs.frozen
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()


@attrs.frozen
class ParsedMessage:
    plain_body: str | None
    html_body: str | None
    attachments: tuple[ParsedAttachment, ...]
    headers: dict[str, list[str]]


def ruby_base64(data: bytes) -> str:
    """Ruby's C{Base64.encode64}: 60-character lines, each ending in a newline."""
    encoded = base64.b64encode(data).decode("ascii")
    return "".join(encoded[i:i + 60] + "\n" for i in range(0, len(encoded), 60))


def _text(part: Message) -> str | None:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, ValueError, AttributeError, KeyError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return content if isinstance(content, str) else None


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (LookupError, ValueError, AttributeError, KeyError):
        return None
    if part is None or part.get_content_subtype() != subtype:
        return None
    return _text(part)


def _is_attachment(part: Message) -> bool:
    if part.is_multipart():
        return False
    disposition = (part.get_content_disposition() or "").lower()
    return disposition == "attachment" or (disposition != "inline" and part.get_filename() is not None)


def _attachments(message: EmailMessage) -> tuple[ParsedAttachment, ...]:
    found = []
    for part in message.walk():
        try:
            if not _is_attachment(part):
                continue
            payload = part.get_payload(decode=True)
            found.append(ParsedAttachment(
                filename=str(part.get_filename() or ""),
                content_type=part.get_content_type(),
                data=payload if isinstance(payload, bytes) else b"",
            ))
        except (LookupError, UnicodeError, ValueError, AttributeError, KeyError, TypeError):
            continue
    return tuple(found)


def _headers(message: EmailMessage) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name in message.keys():
        key = name.lower()
        if key in headers:
            continue
        values = []
        for raw_name, raw_value in message.raw_items():
            if raw_name.lower() != key:
                continue
            try:
                values.append(str(message.policy.header_fetch_parse(raw_name, raw_value)))
            except (LookupError, UnicodeError, ValueError, AttributeError, KeyError, TypeError, IndexError):
                values.append(str(raw_value))
        headers[key] = values
    return headers


def parse_message(raw: bytes) -> ParsedMessage:
    """The parts of C{raw} the API shows."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return ParsedMessage(
        plain_body=_body(message, "plain"),
        html_body=_body(message, "html"),
        attachments=_attachments(message),
        headers=_headers(message),
    )

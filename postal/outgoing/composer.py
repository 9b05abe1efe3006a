# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
Building the MIME message for C{send/message} (Postal's
C{OutgoingMessagePrototype#raw_message}): a multipart/alternative body,
attachments in a multipart/mixed around it, the Received header
C{from api (...) by <web_hostname> with HTTP} and Message-ID
C{<uuid@return_path_domain>}.

The header block is written by hand so that any client-supplied text
(non-ASCII names, stray line breaks) becomes a valid header rather than an
exception; the email package builds only the MIME body.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from email.header import Header
from typing import Sequence
from urllib.parse import quote

import attrs

from postal.clock import utc_datetime
from postal.outgoing.errors import InvalidBase64
from postal.outgoing.values import AttachmentSpec, SendMessageRequest

__all__ = ["decode_base64", "DecodedAttachment", "decode_attachments", "received_header", "compose_message"]

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
_WHITESPACE = re.compile(rb"\s+")
#: Headers the composer writes itself; a custom header of the same name is dropped.
_OWN_HEADERS = frozenset({
    "received", "date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id",
    "subject", "mime-version", "content-type", "content-transfer-encoding",
})


def decode_base64(text: str, what: str) -> bytes:
    """
    Strict base64 (whitespace and missing padding forgiven, as Ruby's
    C{decode64} forgives them); anything else raises L{InvalidBase64}.
    """
    compact = _WHITESPACE.sub(b"", text.encode("utf-8", "surrogatepass"))
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(what) from None


@attrs.frozen
class DecodedAttachment:
    name: str
    content_type: str
    data: bytes


def decode_attachments(attachments: Sequence[AttachmentSpec]) -> list[DecodedAttachment]:
    """Decode attachments already checked for a name and data."""
    decoded = []
    for attachment in attachments:
        name = attachment.name or ""
        data = decode_base64(attachment.data or "", f"data of attachment {name!r}")
        content_type = attachment.content_type or "application/octet-stream"
        if not _MIME_TYPE.match(content_type):
            content_type = "application/octet-stream"
        decoded.append(DecodedAttachment(name=name, content_type=content_type, data=data))
    return decoded


def received_header(client_ip: str, web_hostname: str, timestamp: float, privacy_mode: bool) -> str:
    """Postal's C{ReceivedHeader.generate(server, "api", ip, :http)} (no reverse DNS)."""
    by = f"by {web_hostname} with HTTP; {email.utils.format_datetime(utc_datetime(timestamp))}"
    if privacy_mode:
        return by
    return f"from api ({client_ip} [{client_ip}]) {by}"


def _one_line(value: str) -> str:
    return " ".join(value.replace("\r", "\n").split("\n"))


def _text_value(value: str) -> str:
    value = _one_line(value)
    if value.isascii():
        return value
    return Header(value, "utf-8").encode().replace("\n", "\r\n")


def _address_value(value: str) -> str:
    value = _one_line(value)
    if value.isascii():
        return value
    parsed = [pair for pair in email.utils.getaddresses([value]) if pair[1]]
    if not parsed:
        return _text_value(value)
    rendered = []
    for name, address in parsed:
        if not name:
            rendered.append(address)
        elif name.isascii():
            rendered.append(email.utils.formataddr((name, address)))
        else:
            rendered.append(f"{Header(name, 'utf-8').encode()} <{address}>")
    return ", ".join(rendered)


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _text_part(text: str, subtype: str) -> bytes:
    body = binascii.b2a_qp(_crlf(text).encode("utf-8", "surrogatepass"), istext=True)
    return (f"Content-Type: text/{subtype}; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii") + body


def _filename_param(name: str) -> str:
    name = _one_line(name)
    if name.isascii():
        return 'filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "filename*=utf-8''" + quote(name, safe="")


def _attachment_part(attachment: DecodedAttachment) -> bytes:
    head = (f"Content-Type: {attachment.content_type}\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; {_filename_param(attachment.name)}\r\n\r\n")
    return head.encode("ascii") + base64.encodebytes(attachment.data).replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: Sequence[bytes], boundary_id: str) -> bytes:
    boundary = f"--==_mimepart_{boundary_id}_{subtype}"
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary[2:]}\"\r\n\r\n".encode("ascii")]
    for part in parts:
        out.append(f"{boundary}\r\n".encode("ascii"))
        out.append(part if part.endswith(b"\r\n") else part + b"\r\n")
    out.append(f"{boundary}--\r\n".encode("ascii"))
    return b"".join(out)


def _body(request: SendMessageRequest, attachments: Sequence[DecodedAttachment], boundary_id: str) -> bytes:
    texts = []
    if request.plain_body:
        texts.append(_text_part(request.plain_body, "plain"))
    if request.html_body:
        texts.append(_text_part(request.html_body, "html"))
    alternative = _multipart("alternative", texts, boundary_id)
    if not attachments:
        return alternative
    return _multipart("mixed", [alternative, *(_attachment_part(a) for a in attachments)], boundary_id)


def _header_lines(
    request: SendMessageRequest, message_id: str, received: str, timestamp: float,
) -> list[tuple[str, str]]:
    lines = [("Received", received), ("Date", email.utils.format_datetime(utc_datetime(timestamp)))]
    if request.from_:
        lines.append(("From", _address_value(request.from_)))
    if request.sender:
        lines.append(("Sender", _address_value(request.sender)))
    if request.reply_to:
        lines.append(("Reply-To", _address_value(request.reply_to)))
    if request.to:
        lines.append(("To", _address_value(", ".join(request.to))))
    if request.cc:
        lines.append(("Cc", _address_value(", ".join(request.cc))))
    lines.append(("Message-ID", f"<{message_id}>"))
    if request.subject is not None:
        lines.append(("Subject", _text_value(request.subject)))
    lines.append(("MIME-Version", "1.0"))
    for name, value in request.headers:
        if _HEADER_NAME.match(name) and name.lower() not in _OWN_HEADERS:
            lines.append((name, _text_value(value)))
    return lines


def compose_message(
    request: SendMessageRequest, attachments: Sequence[DecodedAttachment],
    message_id: str, received: str, timestamp: float,
) -> bytes:
    """
    The raw RFC 5322 message (CRLF line ends) for a validated request;
    BCC addresses are not written to the headers.
    """
    head = b"".join(
        f"{name}: {value}\r\n".encode("utf-8")
        for name, value in _header_lines(request, message_id, received, timestamp)
    )
    # The message id's random part makes the boundaries unique to this message.
    return head + _body(request, attachments, message_id.partition("@")[0].replace("-", ""))

# -*- test-case-name: tests.web.test_api_v1 -*-
"""
The HTTP API's logic: authenticate an API key, validate and build a
message (Postal's validation order, first error wins), authorise its
From/Sender, store one message per recipient sharing one raw message, and
read messages back.  Success is only ever reported after the commit.
"""

from __future__ import annotations

import uuid
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Sequence

import attrs
from twisted.internet.interfaces import IReactorTime

from postal.db.api import APISession, MessageView, SendingDomain
from postal.db.messages import Delivery, NewMessage, NewTransaction, StoredMessage
from postal.outgoing import errors
from postal.outgoing.addresses import strip_name_from_address
from postal.outgoing.authorisation import authenticated_domain_for_address, authenticated_domain_from_headers
from postal.groupcommit import GroupCommitter
from postal.outgoing.composer import compose_message, decode_attachments, decode_base64, received_header
from postal.outgoing.interfaces import IAPIStore
from postal.outgoing.values import SendMessageRequest, SendRawRequest, SendResult, SentMessage

__all__ = ["APIMessages", "MAX_ADDRESSES"]

#: Postal's limit per To, CC and BCC.
MAX_ADDRESSES = 50


def _check_send_request(request: SendMessageRequest, domain: SendingDomain | None) -> None:
    """Raise the first of Postal's validation errors, in Postal's order."""
    fields = (("To", request.to), ("CC", request.cc), ("BCC", request.bcc))
    if not any(strip_name_from_address(a) for _, addresses in fields for a in addresses):
        raise errors.NoRecipients()
    for field, addresses in fields:
        if len(addresses) > MAX_ADDRESSES:
            raise errors.TooManyAddresses(field)
    if not (request.plain_body or "").strip() and not (request.html_body or "").strip():
        raise errors.NoContent()
    if not (request.from_ or "").strip():
        raise errors.FromAddressMissing()
    if domain is None:
        raise errors.UnauthenticatedFromAddress()
    for attachment in request.attachments:
        if not (attachment.name or "").strip():
            raise errors.AttachmentMissingName()
        if not (attachment.data or "").strip():
            raise errors.AttachmentMissingData()


def _header_addresses(headers: object, name: str) -> list[str]:
    values = headers.get_all(name) or []  # type: ignore[attr-defined]
    return [address for _, address in getaddresses([str(v) for v in values])]


@attrs.define(eq=False)
class APIMessages:
    """What the four API endpoints do, given a parsed request."""

    _store: IAPIStore
    _committer: GroupCommitter[NewTransaction, list[StoredMessage]]
    _clock: IReactorTime
    _web_hostname: str
    _return_path_domain: str
    #: How long a key's session (server, domains) is reused without a lookup.
    session_ttl: float = 5.0
    _sessions: dict[str, tuple[float, APISession]] = attrs.field(factory=dict, init=False)

    async def authenticate(self, key: str | None) -> APISession:
        """
        @raise errors.AccessDenied: no key.
        @raise errors.InvalidServerAPIKey: no API credential has it.
        @raise errors.ServerSuspended: its server is suspended.
        """
        if key is None or not key.strip():
            raise errors.AccessDenied()
        now = self._clock.seconds()
        cached = self._sessions.get(key)
        if cached is not None and cached[0] > now:
            session: APISession | None = cached[1]
        else:
            # A fresh lookup records the key's use; cached ones are recorded
            # by the store transaction when they send (group commit, no extra fsync).
            session = await self._store.session_for_key(key, now, True)
            if session is not None:
                if len(self._sessions) > 10000:
                    self._sessions.clear()
                self._sessions[key] = (now + self.session_ttl, session)
        if session is None:
            raise errors.InvalidServerAPIKey(key)
        if session.server.suspended:
            raise errors.ServerSuspended()
        return session

    def _sending_domain(self, session: APISession, request: SendMessageRequest) -> SendingDomain | None:
        domain = authenticated_domain_for_address(session.domains, request.from_)
        if domain is None and session.server.allow_sender:
            domain = authenticated_domain_for_address(session.domains, request.sender)
        return domain

    async def send_message(self, session: APISession, request: SendMessageRequest, client_ip: str) -> SendResult:
        """Build, authorise and store a C{send/message} request."""
        domain = self._sending_domain(session, request)
        _check_send_request(request, domain)
        assert domain is not None
        attachments = decode_attachments(request.attachments)
        now = self._clock.seconds()
        message_id = f"{uuid.uuid4()}@{self._return_path_domain}"
        received = received_header(client_ip, self._web_hostname, now, session.server.privacy_mode)
        raw = compose_message(request, attachments, message_id, received, now)
        addresses = [strip_name_from_address(a) for a in (*request.to, *request.cc, *request.bcc)]
        recipients = [a for a in addresses if a]
        template = NewMessage(
            scope="outgoing", rcpt_to="", mail_from=strip_name_from_address(request.from_ or ""),
            server_id=session.server.id, subject=request.subject, message_id=message_id,
            domain_id=domain.id, credential_id=session.credential_id, received_with_ssl=True,
            bounce=request.bounce, tag=request.tag,
        )
        return await self._store_for(session, raw, template, recipients, message_id)

    async def send_raw(self, session: APISession, request: SendRawRequest) -> SendResult:
        """Authorise a raw message by its From/Sender headers and store it as it is."""
        raw = decode_base64(request.data, "`data` parameter")
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        domain = authenticated_domain_from_headers(
            session.domains, _header_addresses(headers, "From"), _header_addresses(headers, "Sender"),
            session.server.allow_sender,
        )
        if domain is None:
            raise errors.UnauthenticatedFromAddress()
        recipients = list(dict.fromkeys(request.rcpt_to))
        if not recipients:
            return SendResult(message_id=None, messages=())
        message_id = _header_message_id(headers)
        template = NewMessage(
            scope="outgoing", rcpt_to="", mail_from=request.mail_from, server_id=session.server.id,
            subject=_header_text(headers, "Subject"), message_id=message_id, domain_id=domain.id,
            credential_id=session.credential_id, received_with_ssl=True, bounce=request.bounce,
        )
        return await self._store_for(session, raw, template, recipients, message_id)

    async def _store_for(
        self, session: APISession, raw: bytes, template: NewMessage, recipients: Sequence[str],
        message_id: str | None,
    ) -> SendResult:
        transaction = NewTransaction(
            server_id=session.server.id, raw=raw,
            messages=[attrs.evolve(template, rcpt_to=address) for address in recipients],
        )
        stored = await self._committer.submit(transaction)
        return SendResult(
            message_id=message_id,
            messages=tuple(SentMessage(address=m.rcpt_to, id=m.id, token=m.token) for m in stored),
        )

    async def message(self, session: APISession, message_id: int, with_raw: bool, with_activity: bool) -> MessageView:
        """@raise errors.MessageNotFound: the server has no such message."""
        view = await self._store.message_view(session.server.id, message_id, with_raw, with_activity)
        if view is None:
            raise errors.MessageNotFound()
        return view

    async def deliveries(self, session: APISession, message_id: int) -> list[Delivery]:
        """@raise errors.MessageNotFound: the server has no such message."""
        found = await self._store.deliveries(session.server.id, message_id)
        if found is None:
            raise errors.MessageNotFound()
        return found


def _header_text(headers: object, name: str) -> str | None:
    value = headers.get(name)  # type: ignore[attr-defined]
    if value is None:
        return None
    try:
        return str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError):
        return str(value)


def _header_message_id(headers: object) -> str | None:
    value = headers.get("Message-ID")  # type: ignore[attr-defined]
    if value is None:
        return None
    bare = str(value).strip().strip("<>").strip()
    return bare or None


# -*- test-case-name: tests.intake.test_service -*-
"""
The intake service the SMTP protocol talks to: authentication, recipient
classification and the end-of-DATA decision (loop, sender authorisation,
Received header, durable group-committed store).
"""

from __future__ import annotations

import hmac
from typing import Sequence

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from postal.db.messages import NewMessage, NewTransaction
from postal.groupcommit import GroupCommitter
from postal.intake.errors import (
    FROM_NAME_INVALID, LOOP_DETECTED, AuthenticationFailed, MessageRejected,
)
from postal.intake.headers import (
    authorised_domain, header_values, is_loop, parse_headers, received_header,
)
from postal.intake.interfaces import IIntakeStore
from postal.intake.recipients import Classification, RecipientClassifier
from postal.intake.values import AcceptedRecipient, CredentialInfo

__all__ = ["Intake", "Envelope"]


@attrs.frozen
class Envelope:
    """Everything the SMTP session knows when DATA ends."""

    mail_from: str
    recipients: tuple[AcceptedRecipient, ...]
    credential: CredentialInfo | None
    helo: str | None
    client_ip: str
    tls: bool
    body: bytes  # the message as received, dot-unstuffed, without our header


@attrs.define
class Intake:
    """Postal's SMTP intake semantics, over an L{IIntakeStore}."""

    _store: IIntakeStore
    _clock: IReactorTime
    _committer: GroupCommitter[NewTransaction, list[str]]
    _classifier: RecipientClassifier
    smtp_hostname: str

    def authenticate_key(self, key: str) -> Deferred[CredentialInfo]:
        """AUTH PLAIN/LOGIN: the password is an SMTP credential key."""
        return Deferred.fromCoroutine(self._authenticate_key(key))

    async def _authenticate_key(self, key: str) -> CredentialInfo:
        credential = await self._store.smtp_credential_by_key(key) if key else None
        if credential is None:
            raise AuthenticationFailed()
        self._touch(credential)
        return credential

    def authenticate_cram_md5(self, username: str, challenge: bytes, digest: str) -> Deferred[CredentialInfo]:
        """CRAM-MD5: C{username} is C{org/server}; any of its SMTP keys may match."""
        return Deferred.fromCoroutine(self._authenticate_cram_md5(username, challenge, digest))

    async def _authenticate_cram_md5(self, username: str, challenge: bytes, digest: str) -> CredentialInfo:
        for credential in await self._store.smtp_credentials_for_server(username):
            expected = hmac.new(credential.key.encode(), challenge, "md5").hexdigest()
            if hmac.compare_digest(expected, digest.lower()):
                self._touch(credential)
                return credential
        raise AuthenticationFailed()

    def _touch(self, credential: CredentialInfo) -> None:
        # Best effort, off the reply path; a failure is logged by the pool.
        self._store.touch_credential(credential.id, self._clock.seconds()).addErrback(lambda _: None)

    def classify(self, rcpt_to: str, credential: CredentialInfo | None, client_ip: str) -> Deferred[Classification]:
        """
        @raise postal.intake.errors.RecipientRejected: through the Deferred.
        """
        return Deferred.fromCoroutine(self._classifier.classify(rcpt_to, credential, client_ip))

    def accept(self, envelope: Envelope) -> Deferred[list[str]]:
        """
        Check and store the message; fires with the message tokens after the
        commit, or fails with L{MessageRejected}.
        """
        return Deferred.fromCoroutine(self._accept(envelope))

    async def _accept(self, envelope: Envelope) -> list[str]:
        fields = parse_headers(envelope.body)
        if is_loop(fields, self.smtp_hostname):
            raise MessageRejected(LOOP_DETECTED)
        domain_id = None
        credential = envelope.credential
        if credential is not None:
            domains = await self._store.verified_domains(credential.server)
            domain = authorised_domain(fields, domains, credential.server.allow_sender)
            if domain is None:
                raise MessageRejected(FROM_NAME_INVALID)
            domain_id = domain.id
        privacy = credential is not None and credential.server.privacy_mode
        header = received_header(envelope.helo, envelope.client_ip, self.smtp_hostname,
                                 self._clock.seconds(), privacy)
        subject = _last(header_values(fields, "subject"))
        message_id = _last(header_values(fields, "message-id"))
        transaction = NewTransaction(
            server_id=envelope.recipients[0].server.id, raw=header + envelope.body,
            messages=tuple(_messages(envelope, subject, message_id, domain_id)),
        )
        return await self._committer.submit(transaction)


def _last(values: Sequence[str]) -> str | None:
    return values[-1][:512] if values else None


def _messages(envelope: Envelope, subject: str | None, message_id: str | None,
              domain_id: int | None) -> list[NewMessage]:
    messages = []
    for recipient in envelope.recipients:
        base = NewMessage(
            scope=recipient.scope, rcpt_to=recipient.rcpt_to, mail_from=envelope.mail_from,
            server_id=recipient.server.id, subject=subject, message_id=message_id,
            received_with_ssl=envelope.tls, bounce=recipient.bounce,
        )
        if recipient.scope == "outgoing":
            credential_id = recipient.credential.id if recipient.credential else None
            messages.append(attrs.evolve(base, domain_id=domain_id, credential_id=credential_id))
            continue
        route = recipient.route
        if route is None:
            messages.append(base)
        elif route.mode == "Endpoint":
            messages.extend(
                attrs.evolve(base, route_id=route.id, endpoint_type=e.type, endpoint_id=e.id)
                for e in route.endpoints)
        else:
            messages.append(attrs.evolve(base, route_id=route.id))
    return messages

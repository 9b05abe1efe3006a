# -*- test-case-name: tests.smtp.test_session -*-
"""
The ESMTP session as a pure state machine: command lines in, replies out.

No transport, no timers: L{SMTPSession.handle_line} returns a L{Reply} or a
Deferred of one (when a decision needs the database), and the glue in
L{postal.smtp.protocol} sends replies in order, holds back later commands
while one is pending (correct PIPELINING), switches to raw mode after 354
and starts TLS after 220.
"""

from __future__ import annotations

from typing import Callable, Union

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from postal.intake.errors import AuthenticationFailed, MessageRejected, RecipientRejected
from postal.intake.recipients import Classification
from postal.intake.service import Envelope, Intake
from postal.intake.values import AcceptedRecipient, CredentialInfo
from postal.logs import FILTERED
from postal.smtp import replies as r
from postal.smtp.auth import MECHANISMS, CramSecret, KeySecret, SASLExchange, start
from postal.smtp.chunking import ChunkedBody, parse_bdat
from postal.smtp.commands import CommandSyntaxError, parse_command, parse_path
from postal.smtp.metrics import COMMANDS, EXCEPTIONS, MESSAGES, labelled
from postal.smtp.rejections import REJECTIONS as _REJECTIONS, count_reply as _count
from postal.smtp.replies import Reply

__all__ = ["SMTPSession", "SessionSettings", "Outcome", "AuthFailureTracker"]

Outcome = Union[Reply, "Deferred[Reply]"]

log = Logger(observer=FILTERED)


@attrs.frozen
class SessionSettings:
    hostname: str
    max_message_size: int  # bytes
    max_recipients: int = 1000
    tls_available: bool = False
    allow_auth_without_tls: bool = False

    @property
    def max_message_size_mb(self) -> int:
        return max(1, self.max_message_size // (1024 * 1024))


class AuthFailureTracker:
    """How AUTH failures are slowed and limited per client IP (shared by sessions)."""

    def delay_for(self, client_ip: str) -> float:
        """Seconds to wait before answering the next failure."""
        return 0.0

    def record_failure(self, client_ip: str) -> None:
        """Count one failure."""

    def blocked(self, client_ip: str) -> bool:
        """True when this IP has failed too often recently."""
        return False

    def delayed(self, client_ip: str, reply: Reply) -> Outcome:
        return reply


@attrs.define
class SMTPSession:
    """
    One client's session.  Read-only flags for the glue: C{in_data} (raw
    mode now), C{start_tls} (start TLS now), C{closing} (close after the
    reply).
    """

    settings: SessionSettings
    intake: Intake
    client_ip: str
    trace_id: str
    auth_failures: AuthFailureTracker = attrs.field(factory=AuthFailureTracker)
    tls: bool = False
    helo: str | None = None
    credential: CredentialInfo | None = None
    mail_from: str | None = None
    recipients: list[AcceptedRecipient] = attrs.field(factory=list)
    in_data: bool = False
    #: Set after a BDAT command: how many octets the glue must read next.
    chunk_expected: int | None = None
    _chunk_last: bool = False
    _chunk_refusal: Reply | None = None
    _chunks: ChunkedBody | None = None
    start_tls: bool = False
    closing: bool = False
    _sasl: SASLExchange | None = None

    @property
    def in_sasl(self) -> bool:
        """True while an AUTH exchange waits for the client's next line."""
        return self._sasl is not None

    def greeting(self) -> Reply:
        return r.greeting(self.settings.hostname, self.trace_id)

    def reset_transaction(self) -> None:
        self.mail_from = None
        self.recipients = []
        self._chunks = None

    def tls_started(self) -> None:
        """RFC 3207: after the handshake the session starts over."""
        self.tls = True
        self.start_tls = False
        self.helo = None
        self.credential = None
        self.reset_transaction()

    @property
    def auth_allowed(self) -> bool:
        return self.tls or not self.settings.tls_available or self.settings.allow_auth_without_tls

    def handle_line(self, line: str) -> Outcome:
        """One command line (or SASL response line) without its CRLF."""
        if self._sasl is not None:
            return self._sasl_step(line)
        command = parse_command(line)
        handler = _HANDLERS.get(command.verb)
        if handler is None:
            return _count(r.R502_INVALID_COMMAND)
        if command.verb != "AUTH":  # counted per mechanism, as Postal does
            labelled(COMMANDS, command.verb).inc()
        outcome = handler(self, command.argument)
        if isinstance(outcome, Reply):
            return _count(outcome)
        return outcome.addCallback(_count)

    # -- commands ---------------------------------------------------------

    def _ehlo(self, argument: str) -> Outcome:
        if not argument:
            return r.R501_SYNTAX
        self.helo = argument
        self.reset_transaction()
        capabilities = [
            f"SIZE {self.settings.max_message_size}", "PIPELINING", "8BITMIME", "SMTPUTF8",
            "ENHANCEDSTATUSCODES", "CHUNKING",
        ]
        if self.settings.tls_available and not self.tls:
            capabilities.append("STARTTLS")
        if self.auth_allowed:
            capabilities.append("AUTH " + " ".join(MECHANISMS))
        return r.ehlo(capabilities)

    def _helo(self, argument: str) -> Outcome:
        if not argument:
            return r.R501_SYNTAX
        self.helo = argument
        self.reset_transaction()
        return r.helo(self.settings.hostname)

    def _starttls(self, argument: str) -> Outcome:
        if argument:
            return r.R501_SYNTAX
        if not self.settings.tls_available or self.tls:
            return r.R502_TLS_UNAVAILABLE
        self.start_tls = True
        return r.R220_READY_TLS

    def _rset(self, argument: str) -> Outcome:
        self.reset_transaction()
        return r.R250_OK

    def _noop(self, argument: str) -> Outcome:
        return r.R250_OK

    def _quit(self, argument: str) -> Outcome:
        self.closing = True
        return r.R221_BYE

    def _auth(self, argument: str) -> Outcome:
        mechanism, _, initial = argument.partition(" ")
        if not self.auth_allowed:
            return r.R530_STARTTLS_FIRST
        if self.credential is not None:
            return r.R503_ALREADY_AUTHENTICATED
        if self.mail_from is not None:
            return r.R503_AUTH_IN_TRANSACTION
        if self.auth_failures.blocked(self.client_ip):
            self.closing = True
            return r.R421_TOO_MANY_AUTH_FAILURES
        exchange = start(mechanism.upper(), self.settings.hostname)
        if exchange is None:
            return r.R504_UNKNOWN_MECHANISM
        COMMANDS.labels(f"AUTH {exchange.mechanism}").inc()
        self._sasl = exchange
        return self._sasl_result(exchange.first(initial.strip() or None))

    def _sasl_step(self, line: str) -> Outcome:
        assert self._sasl is not None
        return self._sasl_result(self._sasl.step(line))

    def _sasl_result(self, result: Reply | KeySecret | CramSecret) -> Outcome:
        if isinstance(result, Reply):
            if result.code != 334:
                self._sasl = None
            return result
        self._sasl = None
        if isinstance(result, KeySecret):
            d = self.intake.authenticate_key(result.key)
            failed = r.R535_INVALID_CREDENTIAL
        else:
            d = self.intake.authenticate_cram_md5(result.username, result.challenge, result.digest)
            failed = r.R535_DENIED
        return d.addCallbacks(self._authenticated, self._auth_failed, errbackArgs=(failed,))

    def _authenticated(self, credential: CredentialInfo) -> Reply:
        self.credential = credential
        log.info("SMTP {trace_id}: authenticated for {server}", trace_id=self.trace_id,
                 server=credential.server.path)
        return r.granted(credential.server.path)

    def _auth_failed(self, failure: Failure, failed: Reply) -> Outcome:
        if not failure.check(AuthenticationFailed):
            log.failure("SMTP {trace_id}: credential lookup failed", failure, trace_id=self.trace_id)
            return r.R451_LOOKUP_ERROR
        self.auth_failures.record_failure(self.client_ip)
        log.info("SMTP {trace_id}: authentication failed from {client_ip}",
                 trace_id=self.trace_id, client_ip=self.client_ip)
        if self.auth_failures.blocked(self.client_ip):
            self.closing = True
            return r.R421_TOO_MANY_AUTH_FAILURES
        return self.auth_failures.delayed(self.client_ip, failed)

    def _mail(self, argument: str) -> Outcome:
        if self.helo is None:
            return r.R503_HELO_FIRST
        try:
            path = parse_path(argument, "FROM")
        except CommandSyntaxError:
            return r.R501_MAIL_FROM_SYNTAX
        for key, value in path.parameters.items():
            if key == "SIZE":
                if not value or not value.isdigit():
                    return r.R501_SYNTAX
                if int(value) > self.settings.max_message_size:
                    return r.size_declared_too_large(self.settings.max_message_size_mb)
            elif key == "BODY":
                if (value or "").upper() not in ("7BIT", "8BITMIME"):
                    return r.R501_SYNTAX
            elif key not in ("SMTPUTF8", "AUTH"):
                return r.R555_UNKNOWN_PARAMETER
        self.reset_transaction()
        self.mail_from = path.address
        return r.R250_SENDER_OK

    def _rcpt(self, argument: str) -> Outcome:
        if self.mail_from is None:
            return r.R503_MAIL_FIRST
        try:
            path = parse_path(argument, "TO")
        except CommandSyntaxError:
            return r.R501_INVALID_RCPT
        if not path.address:
            return r.R501_EMPTY_RCPT
        local, at, domain = path.address.rpartition("@")
        if not at or not local or not domain:
            return r.R501_INVALID_RCPT
        if path.parameters:
            return r.R555_UNKNOWN_PARAMETER
        if len(self.recipients) >= self.settings.max_recipients:
            return r.R452_TOO_MANY_RECIPIENTS
        d = self.intake.classify(path.address, self.credential, self.client_ip)
        return d.addCallbacks(self._recipient_accepted, self._recipient_rejected)

    def _recipient_accepted(self, classification: Classification) -> Reply:
        if classification.authenticated_by_ip is not None and self.credential is None:
            self.credential = classification.authenticated_by_ip
        if self.mail_from is not None:  # RSET may have raced a pipelined RCPT
            self.recipients.append(classification.recipient)
        return r.R250_RECIPIENT_OK

    def _recipient_rejected(self, failure: Failure) -> Reply:
        if failure.check(RecipientRejected):
            return _REJECTIONS[failure.value.reason]  # type: ignore[union-attr]
        EXCEPTIONS.labels("rcpt", failure.type.__name__ if failure.type else "unknown").inc()
        log.failure("SMTP {trace_id}: recipient lookup failed", failure, trace_id=self.trace_id)
        return r.R451_LOOKUP_ERROR

    def _data(self, argument: str) -> Outcome:
        if argument:
            return r.R501_SYNTAX
        if self.mail_from is None or not self.recipients:
            return r.R503_DATA_OUT_OF_ORDER
        if self._chunks is not None:
            return r.R503_DATA_AFTER_BDAT
        self.in_data = True
        return r.R354_GO_AHEAD

    def _bdat(self, argument: str) -> Outcome:
        parsed = parse_bdat(argument)
        if parsed is None:
            return r.R501_SYNTAX
        self.chunk_expected, self._chunk_last = parsed
        # RFC 3030: a refused chunk is still read (and thrown away).
        self._chunk_refusal = None
        if self.mail_from is None or not self.recipients:
            self._chunk_refusal = r.R503_DATA_OUT_OF_ORDER
        elif self._chunks is None:
            self._chunks = ChunkedBody(self.settings.max_message_size)
        return r.NO_REPLY

    def chunk_data(self, data: bytes) -> None:
        """Part of the chunk announced by BDAT."""
        if self._chunk_refusal is None and self._chunks is not None:
            self._chunks.add(data)

    def chunk_finished(self) -> Outcome:
        """The announced chunk has been read in full."""
        size, self.chunk_expected = self.chunk_expected or 0, None
        if self._chunk_refusal is not None:
            refusal, self._chunk_refusal = self._chunk_refusal, None
            self.reset_transaction()
            return _count(refusal)
        if not self._chunk_last:
            return r.chunk_received(size)
        chunks = self._chunks
        assert chunks is not None
        return self.data_finished(chunks.body())

    # -- end of data ------------------------------------------------------

    def data_finished(self, body: bytes | None) -> Outcome:
        """
        The message is complete (C{body}) or was over the size limit (None).
        The transaction ends either way.
        """
        self.in_data = False
        mail_from, recipients = self.mail_from or "", tuple(self.recipients)
        self.reset_transaction()
        if body is None:
            return _count(r.too_large(self.settings.max_message_size_mb))
        envelope = Envelope(
            mail_from=mail_from, recipients=recipients, credential=self.credential,
            helo=self.helo, client_ip=self.client_ip, tls=self.tls, body=body,
        )
        d = self.intake.accept(envelope)

        def stored(tokens: list[str]) -> Reply:
            tls = "yes" if self.tls else "no"
            for recipient in recipients:
                labelled(MESSAGES, recipient.kind, tls).inc()
            log.debug("SMTP {trace_id}: accepted message for {count} recipients",
                     trace_id=self.trace_id, count=len(tokens))
            return r.R250_QUEUED

        def refused(failure: Failure) -> Reply:
            if failure.check(MessageRejected):
                return _count(_REJECTIONS[failure.value.reason])  # type: ignore[union-attr]
            EXCEPTIONS.labels("data", failure.type.__name__ if failure.type else "unknown").inc()
            log.failure("SMTP {trace_id}: storing the message failed", failure, trace_id=self.trace_id)
            return r.R451_LOCAL_ERROR

        return d.addCallbacks(stored, refused)


_HANDLERS: dict[str, Callable[[SMTPSession, str], Outcome]] = {
    "EHLO": SMTPSession._ehlo, "HELO": SMTPSession._helo, "STARTTLS": SMTPSession._starttls,
    "RSET": SMTPSession._rset, "NOOP": SMTPSession._noop, "QUIT": SMTPSession._quit,
    "AUTH": SMTPSession._auth, "MAIL": SMTPSession._mail, "RCPT": SMTPSession._rcpt,
    "DATA": SMTPSession._data, "BDAT": SMTPSession._bdat,
}

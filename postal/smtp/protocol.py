# -*- test-case-name: tests.smtp.test_protocol -*-
# LineReceiver and TimeoutMixin are untyped in Twisted; calling them is the point here.
# mypy: disable-error-code="no-untyped-call"
"""
The Twisted glue around L{SMTPSession}: framing (lines, raw DATA), reply
ordering under PIPELINING, timeouts, connection limits, STARTTLS.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from postal.intake.service import Intake
from postal.smtp import replies as r
from postal.smtp.data import DataReader
from postal.smtp.limits import ClockedAuthFailureTracker, ConnectionLimits
from postal.smtp.metrics import CONNECTIONS, EXCEPTIONS, TLS_CONNECTIONS
from postal.smtp.replies import Reply
from postal.smtp.session import Outcome, SessionSettings, SMTPSession
from postal.tokens import log_id

__all__ = ["SMTPServerProtocol", "SMTPServerFactory", "COMMAND_LINE_LIMIT", "AUTH_LINE_LIMIT"]

log = Logger()

#: RFC 5321 4.5.3.1.4: 512 octets with CRLF for a command line.
COMMAND_LINE_LIMIT = 510
#: RFC 4954 4: AUTH lines (with their initial response) may reach 12288 octets.
AUTH_LINE_LIMIT = 12288


def client_ip_of(address: Any) -> str:
    host = str(getattr(address, "host", "unknown"))
    return host[7:] if host.startswith("::ffff:") else host


class SMTPServerProtocol(LineReceiver, TimeoutMixin):
    """One SMTP connection."""

    delimiter = b"\r\n"
    MAX_LENGTH = AUTH_LINE_LIMIT
    factory: SMTPServerFactory
    session: SMTPSession | None = None
    _reader: DataReader | None = None
    _admitted = False
    _pending = False
    _shutting_down = False
    _chunk_remaining = 0

    @property
    def _t(self) -> Any:
        """The transport (TCP or TLS): typed loosely, as Twisted types it."""
        return self.transport

    def connectionMade(self) -> None:
        CONNECTIONS.inc()
        self.client_ip = client_ip_of(self._t.getPeer())
        set_no_delay = getattr(self._t, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)  # replies are small; Nagle would stall each one
        if not self.factory.limits.admit(self.client_ip):
            self._send(r.R421_TOO_MANY_CONNECTIONS)
            self._t.loseConnection()
            return
        self._admitted = True
        self.factory.connections.add(self)
        if self.factory.implicit_tls:
            TLS_CONNECTIONS.inc()
        self.session = self.factory.new_session(self.client_ip)
        self.callLater = self.factory.clock.callLater  # type: ignore[method-assign,assignment]  # TimeoutMixin on our clock
        self.setTimeout(self.factory.idle_timeout)
        if self.factory.log_connections:
            log.info("SMTP {trace_id}: connection from {client_ip}",
                      trace_id=self.session.trace_id, client_ip=self.client_ip)
        self._send(self.session.greeting())

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:
        self.setTimeout(None)
        if self._admitted:
            self.factory.limits.release(self.client_ip)
            self.factory.connections.discard(self)
            self._admitted = False
        if self._reader is not None and self.session is not None:
            log.info("SMTP {trace_id}: client went away during DATA; nothing stored",
                     trace_id=self.session.trace_id)
            self._reader = None

    def shut_down(self) -> None:
        """
        The server is stopping: an idle session is told 421 and closed now;
        one waiting for a commit gets its reply first, then the 421.
        """
        self._shutting_down = True
        if not self._pending:
            self._send(r.R421_SHUTTING_DOWN)
            self._t.loseConnection()

    def timeoutConnection(self) -> None:
        self._send(r.R421_TIMEOUT)
        self._t.loseConnection()

    def _send(self, reply: Reply) -> None:
        self._t.write(reply.to_bytes())

    # -- commands ---------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        session = self.session
        if session is None or session.closing:
            return
        self.resetTimeout()
        if b"\0" in line:
            self._send(r.R500_BAD_CHARACTERS)
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._send(r.R500_BAD_CHARACTERS)
            return
        if len(line) > COMMAND_LINE_LIMIT and not _may_be_long(text, session):
            self._send(r.R500_LINE_TOO_LONG)
            return
        self._dispatch(session.handle_line(text))

    def lineLengthExceeded(self, line: bytes) -> None:
        self._send(r.R500_LINE_TOO_LONG)
        self._t.loseConnection()

    def _dispatch(self, outcome: Outcome) -> None:
        if isinstance(outcome, Reply):
            self._reply(outcome)
            return
        self._pending = True
        outcome.addCallback(self._reply_later).addErrback(self._unexpected)
        if self._pending:
            # Hold back pipelined commands (in the line buffer) until this
            # decision is made, so replies go out in order.
            self.pauseProducing()

    def _reply_later(self, reply: Reply) -> None:
        self._pending = False
        self._reply(reply)
        if self._shutting_down:
            self.shut_down()
            return
        if self.paused and not self._t.disconnecting:
            self.resumeProducing()

    def _unexpected(self, failure: Failure) -> None:
        EXCEPTIONS.labels("data", failure.type.__name__).inc()  # type: ignore[union-attr]
        log.failure("SMTP: unexpected error", failure)
        self._send(r.R451_LOOKUP_ERROR)
        self._t.loseConnection()

    def _reply(self, reply: Reply) -> None:
        session = self.session
        assert session is not None
        if reply is r.NO_REPLY:
            self._start_chunk(session)
            return
        self._send(reply)
        if session.closing:
            self._t.loseConnection()
        elif session.start_tls:
            self._start_tls(session)
        elif session.in_data and self._reader is None:
            self._reader = DataReader(self.factory.settings.max_message_size)
            self.setTimeout(self.factory.data_timeout)
            self.setRawMode()

    def _start_tls(self, session: SMTPSession) -> None:
        # Anything pipelined after STARTTLS was sent in the clear: drop it
        # (the CVE-2011-0411 command injection).
        self.clearLineBuffer()
        self._t.startTLS(self.factory.tls_options)
        session.tls_started()
        TLS_CONNECTIONS.inc()

    # -- DATA ---------------------------------------------------------------

    def _start_chunk(self, session: SMTPSession) -> None:
        self._chunk_remaining = session.chunk_expected or 0
        self.setTimeout(self.factory.data_timeout)
        self.setRawMode()
        if not self._chunk_remaining:
            self._finish_chunk(session, b"")

    def _finish_chunk(self, session: SMTPSession, rest: bytes) -> None:
        self.setTimeout(self.factory.idle_timeout)
        self.line_mode = 1
        self._buffer = rest + self._buffer
        self._dispatch(session.chunk_finished())

    def rawDataReceived(self, data: bytes) -> None:
        session = self.session
        if session is not None and session.chunk_expected is not None:
            self.resetTimeout()
            piece, rest = data[:self._chunk_remaining], data[self._chunk_remaining:]
            self._chunk_remaining -= len(piece)
            session.chunk_data(piece)
            if not self._chunk_remaining:
                self._finish_chunk(session, rest)
            return
        reader = self._reader
        if reader is None or session is None:
            return
        self.resetTimeout()
        reader.feed(data)
        if not reader.done:
            return
        self._reader = None
        self.setTimeout(self.factory.idle_timeout)
        self.line_mode = 1
        self._buffer = reader.rest + self._buffer
        self._dispatch(session.data_finished(reader.body()))


def _may_be_long(text: str, session: SMTPSession) -> bool:
    return session.in_sasl or text[:5].upper() == "AUTH "


@attrs.define(eq=False)
class SMTPServerFactory(ServerFactory):
    """Builds connections for one listener and holds what they share."""

    settings: SessionSettings
    intake: Intake
    clock: IReactorTime
    tls_options: Any = None
    idle_timeout: float = 300.0
    data_timeout: float = 600.0
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    max_auth_failures: int = 5
    implicit_tls: bool = False
    #: Postal's smtp_server.log_connections: a log event per connection (off by default: it costs).
    log_connections: bool = False
    limits: ConnectionLimits = attrs.field(init=False)
    connections: set[SMTPServerProtocol] = attrs.field(init=False, factory=set)
    auth_failures: ClockedAuthFailureTracker = attrs.field(init=False)
    protocol = SMTPServerProtocol  # type: ignore[assignment]
    noisy = False

    def __attrs_post_init__(self) -> None:
        self.limits = ConnectionLimits(self.max_connections, self.max_connections_per_ip)
        self.auth_failures = ClockedAuthFailureTracker(self.clock, self.max_auth_failures)

    def stopFactory(self) -> None:
        """The listener has stopped (SIGTERM): close sessions cleanly."""
        for connection in list(self.connections):
            connection.shut_down()

    def new_session(self, client_ip: str) -> SMTPSession:
        settings = self.settings
        if self.tls_options is None and settings.tls_available:
            settings = attrs.evolve(settings, tls_available=False)
        return SMTPSession(settings=settings, intake=self.intake, client_ip=client_ip,
                           trace_id=log_id(), auth_failures=self.auth_failures,
                           tls=self.implicit_tls)

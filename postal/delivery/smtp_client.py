# -*- test-case-name: tests.delivery.test_smtp_client,tests.delivery.test_sender -*-
"""
The outbound SMTP client: one connection, driven by L{SMTPSession}.

Our own small client rather than C{twisted.mail.smtp.ESMTPClient}, because
the worker needs what that one makes awkward: MAIL/RCPT/DATA pipelined when
the server offers PIPELINING (RFC 2920), one session reused for many
messages, a read timeout on every reply, and failures reported as values
the delivery pipeline classifies (a reply, a timeout, a lost connection)
rather than as a callback chain that ends the session.
"""

from __future__ import annotations

from collections import deque
import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

__all__ = ["Reply", "SMTPClientProtocol", "ReplyTimeout", "ConnectionDropped", "dot_stuff"]


@attrs.frozen
class Reply:
    """A complete (possibly multi-line) server reply."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400


class ReplyTimeout(Exception):
    """The server did not reply within the read timeout."""


class ConnectionDropped(Exception):
    """The connection closed while a reply was awaited."""


def dot_stuff(data: bytes) -> bytes:
    """CRLF line ends, leading dots doubled and the final C{.} line added."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        # Some bare CR or LF: rewrite every line end (most messages need no copy here).
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SMTPClientProtocol(Protocol):
    """
    Parses replies and hands each to the oldest waiter.  Several waiters
    may be queued at once (pipelining).  Each wait has a read timeout after
    which the connection is aborted.
    """

    MAX_LINE = 1_000_000

    def __init__(self, clock: IReactorTime, read_timeout: float) -> None:
        self._clock = clock
        self._read_timeout = read_timeout
        self._buffer = b""
        self._lines: list[str] = []
        self._waiting: deque[Deferred[Reply]] = deque()
        self._timer: IDelayedCall | None = None
        self._unclaimed: deque[Reply] = deque()
        self._close_waiters: list[Deferred[None]] = []
        self.closed = False
        self.lost_reason: Failure | None = None

    def connectionMade(self) -> None:
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            try:
                set_no_delay(True)
            except (AttributeError, OSError):
                pass

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self._line_received(line.rstrip(b"\r").decode("utf-8", "replace"))
        if len(self._buffer) > self.MAX_LINE:
            self.transport.abortConnection()  # type: ignore[union-attr]

    def _line_received(self, line: str) -> None:
        code_text = line[:3]
        self._lines.append(line[4:])
        if len(line) > 3 and line[3] == "-":
            return
        try:
            code = int(code_text)
        except ValueError:
            code = 0
        reply = Reply(code=code, lines=tuple(self._lines))
        self._lines = []
        if self._waiting:
            self._waiting.popleft().callback(reply)
            self._reset_timer()
        else:
            self._unclaimed.append(reply)

    def _reset_timer(self) -> None:
        """Restart the read timeout while replies are awaited (one timer per connection, moved, not remade)."""
        timer = self._timer
        if self._waiting and not self.closed:
            if timer is not None and timer.active():
                timer.reset(self._read_timeout)
            else:
                self._timer = self._clock.callLater(self._read_timeout, self._timed_out)
        elif timer is not None:
            if timer.active():
                timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            d.errback(ReplyTimeout(f"no reply within {self._read_timeout:g} seconds"))
        self.transport.abortConnection()  # type: ignore[union-attr]

    def expect(self) -> Deferred[Reply]:
        """The next reply (already received, or to come)."""
        if self._unclaimed:
            d: Deferred[Reply] = Deferred()
            d.callback(self._unclaimed.popleft())
            return d
        d = Deferred()
        if self.closed:
            d.errback(ConnectionDropped(self._lost_text()))
            return d
        self._waiting.append(d)
        if len(self._waiting) == 1:
            self._reset_timer()
        return d

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]

    def command(self, line: str) -> Deferred[Reply]:
        self.send(line.encode("utf-8") + b"\r\n")
        return self.expect()

    def when_closed(self) -> Deferred[None]:
        """Fires once the connection is gone."""
        d: Deferred[None] = Deferred()
        if self.closed:
            d.callback(None)
        else:
            self._close_waiters.append(d)
        return d

    def close(self) -> None:
        if not self.closed:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def abort(self) -> None:
        if not self.closed:
            self.transport.abortConnection()  # type: ignore[union-attr]

    def _lost_text(self) -> str:
        if self.lost_reason is None:
            return "connection closed"
        return f"connection closed: {self.lost_reason.getErrorMessage()}"

    def connectionLost(self, reason: Failure = Failure(ConnectionDropped())) -> None:  # type: ignore[assignment]
        self.closed = True
        self.lost_reason = reason
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            d.errback(ConnectionDropped(self._lost_text()))
        closers, self._close_waiters = self._close_waiters, []
        for closer in closers:
            closer.callback(None)

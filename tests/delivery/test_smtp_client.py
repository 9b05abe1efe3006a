# -*- test-case-name: tests.delivery.test_smtp_client -*-
"""
Unit tests for L{postal.delivery.smtp_client}: reply parsing, pipelined
waiters, the read timeout and dot-stuffing, over a StringTransport and a
task.Clock (no sockets).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from postal.delivery.smtp_client import ConnectionDropped, ReplyTimeout, SMTPClientProtocol, dot_stuff


class _Transport(StringTransport):
    """Records an abort as a lost connection, as a real transport would report it."""

    def __init__(self, protocol: SMTPClientProtocol) -> None:
        super().__init__()
        self.protocol = protocol

    def abortConnection(self) -> None:
        super().abortConnection()
        self.protocol.connectionLost(Failure(ConnectionDropped("aborted")))


class ProtocolTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.proto = SMTPClientProtocol(self.clock, read_timeout=30.0)
        self.transport = _Transport(self.proto)
        self.proto.makeConnection(self.transport)

    def test_multiline_and_pipelined_replies(self) -> None:
        """Replies go to waiters in order; a multi-line reply is one Reply with every line."""
        first, second = self.proto.command("EHLO me"), self.proto.expect()
        self.proto.dataReceived(b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n451 later\r\n")
        reply = self.successResultOf(first)
        self.assertEqual((reply.code, reply.lines), (250, ("mx.test", "PIPELINING", "SIZE 10")))
        self.assertEqual(str(self.successResultOf(second)), "451 later")
        self.assertEqual(self.transport.value(), b"EHLO me\r\n")

    def test_read_timeout_restarts_with_each_reply(self) -> None:
        """The timeout counts from the last reply: a slow but steady server is not cut off."""
        waiters = [self.proto.expect() for _ in range(3)]
        self.clock.advance(20)
        self.proto.dataReceived(b"250 one\r\n")
        self.clock.advance(20)
        self.proto.dataReceived(b"250 two\r\n")
        self.clock.advance(20)
        self.assertNoResult(waiters[2])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(10)
        self.failureResultOf(waiters[2], ReplyTimeout)
        self.assertTrue(self.transport.disconnecting)

    def test_no_timer_while_nothing_is_awaited(self) -> None:
        """Once every awaited reply has arrived no timer is left to fire on an idle connection."""
        waiter = self.proto.expect()
        self.proto.dataReceived(b"250 ok\r\n")
        self.successResultOf(waiter)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lost_connection_fails_waiters(self) -> None:
        """A connection lost while replies are awaited fails them with ConnectionDropped."""
        waiter = self.proto.expect()
        self.proto.connectionLost(Failure(ConnectionDropped("gone")))
        self.failureResultOf(waiter, ConnectionDropped)
        self.failureResultOf(self.proto.expect(), ConnectionDropped)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DotStuffTests(SynchronousTestCase):
    def test_crlf_message(self) -> None:
        """Leading dots are doubled and the terminating dot line is added."""
        self.assertEqual(dot_stuff(b".a\r\nb\r\n.\r\nc"), b"..a\r\nb\r\n..\r\nc\r\n.\r\n")

    def test_bare_line_ends_become_crlf(self) -> None:
        """Bare LF and bare CR line ends are sent as CRLF."""
        self.assertEqual(dot_stuff(b"a\nb\rc\r\n.d"), b"a\r\nb\r\nc\r\n..d\r\n.\r\n")

# -*- test-case-name: tests.smtp.test_protocol -*-
"""
The transport glue: PIPELINING with pending decisions, line limits, NUL
bytes, timeouts, connection caps, a client vanishing mid-DATA, metrics.
"""

from __future__ import annotations

from types import SimpleNamespace

from typing import Any

from prometheus_client import REGISTRY
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from postal.db import schema as s
from tests.smtp.fixtures import count
from tests.smtp.test_session import SessionCase


class _HeldStore:
    """Delegates to the real store, but each commit waits until released."""

    def __init__(self, store: Any, held: list[Deferred[Any]]) -> None:
        self._store = store
        self._held = held

    def store_transactions(self, now: float, transactions: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self._held.append(d)
        return d.addCallback(lambda _: self._store.store_transactions(now, transactions))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _wrap_commits(committer: Any, wrapper: type[_HeldStore], held: list[Deferred[Any]]) -> None:
    """Route the group committer's commits through C{wrapper}."""
    inner = SimpleNamespace(store_transactions=committer._commit)
    committer._commit = wrapper(inner, held).store_transactions


class PipeliningTests(SessionCase):
    def test_replies_in_order_while_store_is_pending(self) -> None:
        """Commands pipelined behind a pending end-of-DATA wait; replies come out in order."""
        self.auth_plain()
        committer = self.factory.intake._committer
        held: list[Deferred[Any]] = []
        _wrap_commits(committer, _HeldStore, held)
        self.transport.clear()
        self.protocol.dataReceived(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@gmail.test>\r\nDATA\r\n"
            b"From: a@example.com\r\n\r\nx\r\n.\r\nNOOP\r\nRSET\r\n")
        self.assertEqual(self.transport.value().decode().splitlines(),
                         ["250 2.1.0 OK", "250 2.1.5 OK", "354 Go ahead"])
        self.assertTrue(self.protocol.paused)
        held[0].callback(None)
        self.assertEqual(self.transport.value().decode().splitlines()[3:],
                         ["250 2.0.0 OK", "250 2.0.0 OK", "250 2.0.0 OK"])
        self.assertEqual(count(self.pool, s.messages), 1)

    def test_whole_transaction_in_one_packet(self) -> None:
        """A whole pipelined transaction in one write gets every reply."""
        self.auth_plain()
        replies = self.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@gmail.test>\r\n"
                            b"RCPT TO:<c@gmail.test>\r\nDATA\r\nFrom: a@example.com\r\n\r\nx\r\n.\r\nQUIT")
        self.assertEqual(replies, ["250 2.1.0 OK", "250 2.1.5 OK", "250 2.1.5 OK", "354 Go ahead",
                                   "250 2.0.0 OK", "221 2.0.0 Closing Connection"])


class _FailingOnceStore(_HeldStore):
    """The first commit fails as if the database had gone away."""

    def store_transactions(self, now: float, transactions: Any) -> Deferred[Any]:
        if not self._held:
            self._held.append(Deferred())
            from twisted.internet.defer import fail
            return fail(OSError("database unavailable"))
        return self._store.store_transactions(now, transactions)  # type: ignore[no-any-return]


class StoreFailureTests(SessionCase):
    def test_store_failure_is_451_and_session_continues(self) -> None:
        """A failed commit answers 451 (nothing stored) and the next transaction is stored."""
        self.auth_plain()
        committer = self.factory.intake._committer
        _wrap_commits(committer, _FailingOnceStore, [])
        message = ["MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA", b"From: a@example.com\r\n\r\nx\r\n."]
        self.assertEqual(self.send(*message)[-1], "451 4.3.0 Temporary error storing the message, try again later")
        self.assertEqual(count(self.pool, s.messages), 0)
        self.assertEqual(self.send(*message)[-1], "250 2.0.0 OK")
        self.assertEqual(count(self.pool, s.messages), 1)
        self.flushLoggedErrors(OSError)


class BadInputTests(SessionCase):
    factory_options = {"max_recipients": 2, "max_connections_per_ip": 2}

    def test_overlong_command(self) -> None:
        """A command line over 512 octets is 500 Line too long; the session goes on."""
        self.assertEqual(self.send("NOOP " + "x" * 600, "NOOP"),
                         ["500 5.5.2 Line too long", "250 2.0.0 OK"])

    def test_endless_line(self) -> None:
        """A line that never ends is refused and the connection closed."""
        self.transport.clear()
        self.protocol.dataReceived(b"x" * 20000)
        self.assertEqual(self.transport.value(), b"500 5.5.2 Line too long\r\n")
        self.assertTrue(self.transport.disconnecting)

    def test_nul_byte(self) -> None:
        """A NUL byte in a command is refused."""
        self.assertEqual(self.send(b"HELO a\0b"), ["500 5.5.2 Invalid characters in command"])

    def test_too_many_recipients(self) -> None:
        """Recipients beyond max_recipients get 452."""
        self.auth_plain()
        replies = self.send("MAIL FROM:<a@example.com>", "RCPT TO:<a@gmail.test>",
                            "RCPT TO:<b@gmail.test>", "RCPT TO:<c@gmail.test>")
        self.assertEqual(replies[-1], "452 4.5.3 Too many recipients")

    def test_vanish_mid_data(self) -> None:
        """A client that disconnects during DATA leaves nothing stored and its slot freed."""
        self.auth_plain()
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA", "From: a@example.com")
        self.protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(count(self.pool, s.messages), 0)
        self.assertEqual(self.factory.limits.total, 0)

    def test_per_ip_cap(self) -> None:
        """A third connection from one IP (cap 2) gets 421 and is closed."""
        self.connect()
        protocol, transport = self.connect()
        self.assertEqual(transport.value(), b"421 4.7.0 Too many connections, try again later\r\n")
        self.assertTrue(transport.disconnecting)


class TimeoutTests(SessionCase):
    factory_options = {"idle_timeout": 30.0, "data_timeout": 60.0}

    def test_idle_timeout(self) -> None:
        """A client that never sends is told 421 and disconnected after idle_timeout."""
        self.transport.clear()
        self.clock.advance(31)
        self.assertEqual(self.transport.value(), b"421 4.4.2 Timeout, closing connection\r\n")
        self.assertTrue(self.transport.disconnecting)

    def test_data_timeout(self) -> None:
        """During DATA the data timeout applies instead of the idle one."""
        self.auth_plain()
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA")
        self.clock.advance(45)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(20)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(count(self.pool, s.messages), 0)


class MetricsTests(SessionCase):
    def value(self, name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def test_postal_metric_names(self) -> None:
        """Connections, commands, client errors and messages are counted under Postal's names."""
        before = {
            "conn": self.value("postal_smtp_server_connections_total"),
            "ehlo": self.value("postal_smtp_server_commands_total", command="EHLO"),
            "err": self.value("postal_smtp_server_client_errors_total", error="invalid-command"),
            "msg": self.value("postal_smtp_server_messages_total", type="outgoing", tls="no"),
        }
        self.connect()
        self.auth_plain()
        self.send("BOGUS", "MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA",
                  b"From: a@example.com\r\n\r\nx\r\n.")
        self.assertEqual(self.value("postal_smtp_server_connections_total") - before["conn"], 1)
        self.assertEqual(self.value("postal_smtp_server_commands_total", command="EHLO") - before["ehlo"], 1)
        self.assertEqual(self.value("postal_smtp_server_client_errors_total", error="invalid-command")
                         - before["err"], 1)
        self.assertEqual(self.value("postal_smtp_server_messages_total", type="outgoing", tls="no")
                         - before["msg"], 1)


class ShutdownTests(SessionCase):
    def test_idle_session_closed_on_stop(self) -> None:
        """When the listener stops, an idle session is told 421 and closed."""
        self.transport.clear()
        self.factory.stopFactory()
        self.assertEqual(self.transport.value(), b"421 4.3.2 Service shutting down, closing connection\r\n")
        self.assertTrue(self.transport.disconnecting)

    def test_pending_commit_answered_before_close(self) -> None:
        """A session waiting for its commit gets the 250 first, then 421."""
        self.auth_plain()
        committer = self.factory.intake._committer
        held: list[Deferred[Any]] = []
        _wrap_commits(committer, _HeldStore, held)
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA", b"From: a@example.com\r\n\r\nx\r\n.")
        self.transport.clear()
        self.factory.stopFactory()
        self.assertEqual(self.transport.value(), b"")
        held[0].callback(None)
        self.assertEqual(self.transport.value().decode().splitlines(),
                         ["250 2.0.0 OK", "421 4.3.2 Service shutting down, closing connection"])
        self.assertEqual(count(self.pool, s.messages), 1)


class ConnectionLoggingTests(SessionCase):
    def test_connections_logged_only_when_configured(self) -> None:
        """A connection is logged (with its trace id) only with smtp_server.log_connections, as in Postal."""
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

        def connections() -> list[str]:
            return [e["client_ip"] for e in events if "connection from" in e.get("log_format", "")]

        self.connect()
        self.assertEqual(connections(), [])
        self.factory.log_connections = True
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.77", 40001))
        assert protocol is not None
        protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.77", 40001)))
        self.assertEqual(connections(), ["192.0.2.77"])

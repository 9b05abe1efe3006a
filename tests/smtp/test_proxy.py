# -*- test-case-name: tests.smtp.test_proxy -*-
"""PROXY protocol in front of the SMTP protocol, over StringTransport."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from postal.smtp.proxy import ProxyWrappingFactory
from tests.dbhelpers import migrated_pool
from tests.smtp.fixtures import HOSTNAME, make_account, make_factory


class ProxyTests(SynchronousTestCase):
    def setUp(self) -> None:
        pool = migrated_pool(self)
        make_account(pool)
        self.clock = Clock()
        self.inner = make_factory(pool, self.clock, idle_timeout=30.0)
        factory = ProxyWrappingFactory(self.inner)  # type: ignore[no-untyped-call]
        self.protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1))
        self.protocol.makeConnection(self.transport)

    def test_no_banner_before_header(self) -> None:
        """Nothing is sent until the PROXY header arrives; then the banner, for the proxied client."""
        self.assertEqual(self.transport.value(), b"")
        self.protocol.dataReceived(b"PROXY TCP4 198.51.100.7 127.0.0.1 5555 25\r\nHELO x\r\n")
        lines = self.transport.value().decode().splitlines()
        self.assertTrue(lines[0].startswith(f"220 {HOSTNAME} ESMTP Postal/"))
        self.assertEqual(lines[1], f"250 {HOSTNAME}")
        self.assertEqual(self.protocol.wrappedProtocol.client_ip, "198.51.100.7")  # type: ignore[attr-defined]

    def test_v2_header(self) -> None:
        """A PROXY v2 header is understood too."""
        import socket
        import struct
        address = socket.inet_aton("198.51.100.8") + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 5, 25)
        header = b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack("!H", len(address)) + address
        self.protocol.dataReceived(header)
        self.assertEqual(self.protocol.wrappedProtocol.client_ip, "198.51.100.8")  # type: ignore[attr-defined]

    def test_garbage_refused(self) -> None:
        """Anything but a PROXY header gets Postal's 502 Proxy Error and a close."""
        self.protocol.dataReceived(b"EHLO x\r\n")
        self.assertEqual(self.transport.value(), b"502 5.5.2 Proxy Error\r\n")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.inner.limits.total, 0)

    def test_header_timeout(self) -> None:
        """A client that never sends the PROXY header is closed after the idle timeout."""
        self.clock.advance(29)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(self.transport.disconnecting)

    def test_header_cancels_timeout(self) -> None:
        """Once the header has arrived, no header timer is left behind."""
        self.protocol.dataReceived(b"PROXY TCP4 198.51.100.7 127.0.0.1 5555 25\r\nQUIT\r\n")
        self.protocol.connectionLost(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

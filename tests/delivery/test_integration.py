# -*- test-case-name: tests.delivery.test_integration -*-
"""
The sender against real peers over loopback: MX lookups through
C{twisted.names} to a local DNS server, delivery to aiosmtpd (plain and
STARTTLS with a test CA) and to Postfix's smtp-sink (connection reuse).
"""

from __future__ import annotations

import os
import shutil
import ssl as stdlib_ssl
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SkipTest, TestCase

from postal.config import DNSSettings
from postal.delivery.mx import Relay
from postal.delivery.sender import SMTPSender
from postal.dns import AddressRecord, MXRecord, make_resolver
from postal.testing import Zone
from tests.delivery.scripted import make_test_ca
from tests.dnsserver import start_dns_server

MESSAGE = b"From: a@example.com\r\nTo: u@dest.test\r\nSubject: integration\r\n\r\nhello\r\n"


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Collect:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK stored"


class IntegrationTests(TestCase):
    """Real peers over loopback (DNS server, aiosmtpd, smtp-sink), each test bounded by C{timeout}."""

    timeout = 60

    def sender(self, port: int, relays: list[Relay] | None = None, trust_root: Any = None) -> SMTPSender:
        zone = Zone()
        zone.add("dest.test", MXRecord(10, "mx.dest.test"))
        zone.add("mx.dest.test", AddressRecord("127.0.0.1"))
        dns = start_dns_server(self, zone)
        resolver = make_resolver(DNSSettings(nameservers=(dns.nameserver,), timeout=2.0), reactor)  # type: ignore[arg-type]
        sender = SMTPSender(reactor, resolver,  # type: ignore[arg-type]
                            lambda a, p: TCP4ClientEndpoint(reactor, a, p, timeout=5), "worker.test",
                            read_timeout=5.0, relays=relays or (), trust_root=trust_root, mx_port=port)
        self.addCleanup(sender.close_idle)
        return sender

    def aiosmtpd(self, tls_context: Any = None) -> tuple[int, _Collect]:
        from aiosmtpd.controller import Controller
        handler = _Collect()
        port = _free_port()
        kwargs: dict[str, Any] = {}
        if tls_context is not None:
            kwargs = {"tls_context": tls_context, "require_starttls": True}
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        self.addCleanup(controller.stop)
        return port, handler

    async def test_mx_lookup_and_aiosmtpd(self) -> None:
        """Mail for dest.test goes through the local DNS server's MX to aiosmtpd."""
        port, handler = self.aiosmtpd()
        result = await self.sender(port).send("dest.test", "rp@example.com", "u@dest.test", MESSAGE)
        self.assertEqual(result.status, "Sent", result)
        self.assertIn("(mx.dest.test)", result.details)
        [envelope] = handler.envelopes
        self.assertEqual((envelope.mail_from, envelope.rcpt_tos), ("rp@example.com", ["u@dest.test"]))
        self.assertEqual(envelope.content.replace(b"\r\n", b"\n"), MESSAGE.replace(b"\r\n", b"\n"))

    async def test_starttls_to_aiosmtpd_with_test_ca(self) -> None:
        """STARTTLS mode delivers to aiosmtpd with a certificate from the test CA, verified."""
        ca = make_test_ca("mx.dest.test")
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        with open(os.path.join(folder, "cert.pem"), "wb") as f:
            f.write(ca.cert_pem)
        with open(os.path.join(folder, "key.pem"), "wb") as f:
            f.write(ca.key_pem)
        context = stdlib_ssl.create_default_context(stdlib_ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem"))
        port, handler = self.aiosmtpd(context)
        sender = self.sender(port, relays=[Relay("mx.dest.test", port, "STARTTLS")], trust_root=ca.trust_root)
        result = await sender.send("dest.test", "rp@example.com", "u@dest.test", MESSAGE)
        self.assertEqual((result.status, result.sent_with_ssl), ("Sent", True), result)
        self.assertEqual(len(handler.envelopes), 1)

    async def test_smtp_sink_with_reuse(self) -> None:
        """Fifty messages to smtp-sink are all accepted over one reused connection."""
        if shutil.which("smtp-sink") is None and not os.path.exists("/usr/sbin/smtp-sink"):
            raise SkipTest("smtp-sink is not installed")
        port = _free_port()
        ended: Deferred[None] = Deferred()

        class Sink(ProcessProtocol):
            def processEnded(self, reason: Any) -> None:
                ended.callback(None)

        args = ["smtp-sink"] + (["-u", "nobody"] if os.getuid() == 0 else []) + [f"127.0.0.1:{port}", "10"]
        process = reactor.spawnProcess(Sink(), "/usr/sbin/smtp-sink", args, env=None)  # type: ignore[attr-defined]

        def stop() -> Deferred[None]:
            process.signalProcess("TERM")
            return ended

        self.addCleanup(stop)
        sender = self.sender(port)
        for _ in range(100):
            first = await sender.send("dest.test", "rp@example.com", "u@dest.test", MESSAGE)
            if first.status == "Sent":
                break
            d: Deferred[None] = Deferred()
            reactor.callLater(0.05, d.callback, None)  # type: ignore[attr-defined]
            await d
        results = [await sender.send("dest.test", "rp@example.com", "u@dest.test", MESSAGE) for _ in range(49)]
        self.assertEqual({r.status for r in results} | {first.status}, {"Sent"})
        self.assertEqual({r.log_id for r in results}, {first.log_id}, "one session for all")

# -*- test-case-name: tests.delivery.test_sender -*-
"""
Tests for L{postal.delivery.sender} and the session/client under it, over
real loopback sockets against a scripted server and aiosmtpd: outcomes,
Postal's detail texts, pipelining, connection reuse, SSL modes and faults.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import SynchronousTestCase, TestCase

from postal.delivery.mx import Relay
from postal.delivery.sender import SendResult, SMTPSender, retry_hint
from postal.dns import AddressRecord, MXRecord
from postal.testing import FakeResolver, Zone
from tests.delivery.scripted import Script, ScriptedSMTPFactory, make_test_ca

MESSAGE = b"Subject: hi\r\n\r\n.dot line\r\nbody\r\n"


def endpoint_factory(address: str, port: int) -> Any:
    return TCP4ClientEndpoint(reactor, address, port, timeout=2)


class SenderTests(TestCase):
    """Over loopback sockets to a scripted server: a real-reactor TestCase with a timeout."""

    timeout = 30

    def listen(self, script: Script) -> int:
        port = reactor.listenTCP(0, ScriptedSMTPFactory(script), interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
        self.addCleanup(port.stopListening)
        self.addCleanup(script.all_closed)
        return int(port.getHost().port)  # type: ignore[attr-defined]

    def sender(self, port: int, zone: Zone | None = None, read_timeout: float = 2.0, **kw: Any) -> SMTPSender:
        if zone is None:
            zone = Zone()
            zone.add("dest.test", MXRecord(10, "mx.dest.test"))
            zone.add("mx.dest.test", AddressRecord("127.0.0.1"))
        sender = SMTPSender(reactor, FakeResolver(zone), endpoint_factory, "worker.test",  # type: ignore[arg-type]
                            read_timeout=read_timeout, idle_timeout=5.0, mx_port=port, **kw)
        self.addCleanup(sender.close_idle)
        return sender

    async def send(self, sender: SMTPSender, rcpt: str = "u@dest.test") -> SendResult:
        return await sender.send(rcpt.rpartition("@")[2], "rp@example.com", rcpt, MESSAGE)

    async def test_sent_with_postal_details_and_reuse(self) -> None:
        """Accepted messages are Sent with Postal's text, and the second reuses the connection."""
        script = Script()
        sender = self.sender(self.listen(script))
        first = await self.send(sender)
        second = await self.send(sender)
        self.assertEqual(first.status, "Sent")
        self.assertRegex(first.details, r"^Message for u@dest.test accepted by 127.0.0.1:\d+ \(mx.dest.test\)$")
        self.assertEqual(first.output, "250 2.0.0 queued as 12345")
        self.assertEqual(second.status, "Sent")
        self.assertEqual(script.connections, 1)
        self.assertEqual(len(script.messages), 2)
        self.assertEqual(script.messages[0][2], MESSAGE)
        self.assertEqual(first.log_id, second.log_id)
        self.assertFalse(first.sent_with_ssl)

    async def test_pipelined_commands(self) -> None:
        """With PIPELINING the envelope goes out together; without it one command at a time, both work."""
        for pipelining in (True, False):
            script = Script(pipelining=pipelining)
            result = await self.send(self.sender(self.listen(script)))
            self.assertEqual(result.status, "Sent")
            self.assertEqual(script.commands[1:4], ["MAIL FROM:<rp@example.com>", "RCPT TO:<u@dest.test>", "DATA"])

    async def test_5xx_is_hard_fail(self) -> None:
        """A 5xx reply to RCPT is a HardFail with Postal's permanent-error text."""
        result = await self.send(self.sender(self.listen(Script(rcpt_reply="550 5.1.1 no such user"))))
        self.assertEqual(result.status, "HardFail")
        self.assertRegex(result.details, r"^Permanent SMTP delivery error when sending to 127.0.0.1:\d+ \(mx.dest.test\)$")
        self.assertEqual(result.output, "550 5.1.1 no such user")

    async def test_452_on_rcpt_is_soft_fail_with_hint(self) -> None:
        """452 on RCPT is a SoftFail; "try again in 2 minutes" sets a 130 second retry."""
        script = Script(rcpt_reply="452 4.5.3 too many, try again in 2 minutes")
        sender = self.sender(self.listen(script))
        result = await self.send(sender)
        self.assertEqual(result.status, "SoftFail")
        self.assertTrue(result.details.startswith("Temporary SMTP delivery error when sending to 127.0.0.1:"))
        self.assertEqual(result.retry_in, 130)
        script.rcpt_reply = "250 OK"
        self.assertEqual((await self.send(sender)).status, "Sent")
        self.assertEqual(script.connections, 1, "the session survives a failed RCPT (RSET)")

    async def test_421_on_connect(self) -> None:
        """A 421 greeting is a SoftFail naming the hosts tried."""
        result = await self.send(self.sender(self.listen(Script(greeting="421 busy"))))
        self.assertEqual(result.status, "SoftFail")
        self.assertEqual(result.details, "No SMTP servers were available for dest.test. Tried mx.dest.test.")
        self.assertIn("421 busy", result.output)

    async def test_drop_mid_data(self) -> None:
        """A remote that closes during DATA gives a SoftFail, and the sender carries on afterwards."""
        script = Script(data_mode="drop")
        sender = self.sender(self.listen(script))
        result = await self.send(sender)
        self.assertEqual(result.status, "SoftFail")
        self.assertTrue(result.details.startswith("An error occurred while sending the message to 127.0.0.1:"))
        script.data_mode = "reply"
        self.assertEqual((await self.send(sender)).status, "Sent")

    async def test_drop_before_final_reply(self) -> None:
        """A remote that takes the data then drops before replying is a SoftFail (retry: at-least-once)."""
        script = Script(data_mode="drop-after")
        result = await self.send(self.sender(self.listen(script)))
        self.assertEqual(result.status, "SoftFail")
        self.assertEqual(len(script.messages), 1)

    async def test_slow_remote_times_out(self) -> None:
        """A remote that never answers the data is a SoftFail after the read timeout."""
        result = await self.send(self.sender(self.listen(Script(data_mode="silent")), read_timeout=0.3))
        self.assertEqual(result.status, "SoftFail")
        self.assertIn("no reply within 0.3 seconds", result.output)

    async def test_dns_outcomes(self) -> None:
        """NXDOMAIN and Null MX are HardFail; SERVFAIL is SoftFail; no MX means the domain itself."""
        script = Script()
        port = self.listen(script)
        zone = Zone()
        zone.add("nullmx.test", MXRecord(0, "."))
        zone.add("broken.test")
        zone.fail("broken.test")
        zone.add("implicit.test", AddressRecord("127.0.0.1"))
        sender = self.sender(port, zone)
        self.assertEqual((await self.send(sender, "u@nowhere.test")).status, "HardFail")
        null = await self.send(sender, "u@nullmx.test")
        self.assertEqual((null.status, null.details), ("HardFail", "Domain nullmx.test does not accept mail."))
        self.assertEqual((await self.send(sender, "u@broken.test")).status, "SoftFail")
        self.assertEqual((await self.send(sender, "u@implicit.test")).status, "Sent")

    async def test_starttls_verified(self) -> None:
        """STARTTLS mode verifies the certificate against the trusted CA and reports sent_with_ssl."""
        ca = make_test_ca()
        script = Script(starttls=True, tls_options=ca.server_options)
        port = self.listen(script)
        sender = self.sender(port, relays=[Relay("mx.dest.test", port, "STARTTLS")], trust_root=ca.trust_root,
                             zone=self._zone())
        result = await self.send(sender)
        self.assertEqual((result.status, result.sent_with_ssl), ("Sent", True))

    async def test_starttls_untrusted_fails_auto_falls_back(self) -> None:
        """An untrusted certificate fails STARTTLS mode; Auto does not verify and still uses TLS."""
        ca = make_test_ca()
        script = Script(starttls=True, tls_options=ca.server_options)
        port = self.listen(script)
        strict = self.sender(port, relays=[Relay("mx.dest.test", port, "STARTTLS")], zone=self._zone(),
                             trust_root=make_test_ca().trust_root)
        self.assertEqual((await self.send(strict)).status, "SoftFail")
        auto = self.sender(port, relays=[Relay("mx.dest.test", port, "Auto")], zone=self._zone())
        result = await self.send(auto)
        self.assertEqual((result.status, result.sent_with_ssl), ("Sent", True))

    async def test_starttls_required_but_not_offered(self) -> None:
        """STARTTLS mode against a server without STARTTLS never sends in clear."""
        script = Script()
        port = self.listen(script)
        sender = self.sender(port, relays=[Relay("mx.dest.test", port, "STARTTLS")], zone=self._zone())
        self.assertEqual((await self.send(sender)).status, "SoftFail")
        self.assertEqual(script.messages, [])

    def _zone(self) -> Zone:
        zone = Zone()
        zone.add("mx.dest.test", AddressRecord("127.0.0.1"))
        return zone


class RetryHintTests(SynchronousTestCase):
    def test_hints(self) -> None:
        """"N seconds" means N+10 s, "N minutes" N*60+10 s, anything else no hint."""
        self.assertEqual(retry_hint("421 try again in 30 seconds"), 40)
        self.assertEqual(retry_hint("450 wait 5 minutes"), 310)
        self.assertIsNone(retry_hint("450 later"))

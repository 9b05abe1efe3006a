# -*- test-case-name: tests.smtp.test_session -*-
"""
Each command's exact replies (Postal's texts with enhanced status codes),
over StringTransport, against the real intake store on SQLite.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from postal.db.servers import get_server_txn
from tests.dbhelpers import migrated_pool
from tests.smtp.fixtures import HOSTNAME, SMTP_KEY, count, make_account, make_factory, messages, raw


class SessionCase(SynchronousTestCase):
    """A connected protocol with helpers to send lines and read replies."""

    client_ip = "192.0.2.10"
    factory_options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.pool = migrated_pool(self)
        self.account = make_account(self.pool)
        self.clock = Clock()
        self.factory = make_factory(self.pool, self.clock, **self.factory_options)
        self.protocol, self.transport = self.connect()

    def connect(self) -> tuple[Any, StringTransport]:
        address = IPv4Address("TCP", self.client_ip, 40000)
        protocol = self.factory.buildProtocol(address)
        assert protocol is not None
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def send(self, *lines: bytes | str) -> list[str]:
        """Send lines; return the reply lines they produced."""
        self.transport.clear()
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            self.protocol.dataReceived(data + b"\r\n")
        return list(self.transport.value().decode().splitlines())

    def auth_plain(self) -> None:
        token = base64.b64encode(b"\0user\0" + SMTP_KEY.encode()).decode()
        self.assertEqual(self.send("EHLO client.test", "AUTH PLAIN " + token)[-1],
                         "235 2.7.0 Granted for acme/mail")


class GreetingAndHeloTests(SessionCase):
    def test_banner(self) -> None:
        """The banner is Postal's: 220 <smtp_hostname> ESMTP Postal/<8-char trace id>."""
        protocol, transport = self.connect()
        line = transport.value().decode()
        self.assertTrue(line.startswith(f"220 {HOSTNAME} ESMTP Postal/"))
        self.assertEqual(len(line.strip().rsplit("/", 1)[1]), 8)

    def test_ehlo_capabilities(self) -> None:
        """EHLO lists SIZE, PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING and AUTH."""
        self.assertEqual(self.send("EHLO client.test"), [
            "250-My capabilities are", "250-SIZE 1048576", "250-PIPELINING", "250-8BITMIME",
            "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250 AUTH CRAM-MD5 PLAIN LOGIN",
        ])

    def test_helo(self) -> None:
        """HELO answers 250 with the server's hostname."""
        self.assertEqual(self.send("HELO client.test"), [f"250 {HOSTNAME}"])

    def test_ehlo_needs_a_name(self) -> None:
        """EHLO without a domain is a syntax error."""
        self.assertEqual(self.send("EHLO"), ["501 5.5.4 Syntax error in parameters or arguments"])

    def test_noop_rset_quit(self) -> None:
        """NOOP and RSET answer 250 OK; QUIT answers 221 and closes."""
        self.assertEqual(self.send("NOOP", "RSET"), ["250 2.0.0 OK", "250 2.0.0 OK"])
        self.assertEqual(self.send("QUIT"), ["221 2.0.0 Closing Connection"])
        self.assertTrue(self.transport.disconnecting)

    def test_unknown_command(self) -> None:
        """Unknown commands get Postal's 502 and the session carries on."""
        self.assertEqual(self.send("VRFY root", "NOOP"),
                         ["502 5.5.2 Invalid/unsupported command", "250 2.0.0 OK"])

    def test_starttls_unavailable(self) -> None:
        """STARTTLS without TLS configured is 502 TLS not available."""
        self.assertEqual(self.send("STARTTLS"), ["502 5.5.1 TLS not available"])


class OrderTests(SessionCase):
    def test_mail_before_helo(self) -> None:
        """MAIL before EHLO/HELO is refused with Postal's 503."""
        self.assertEqual(self.send("MAIL FROM:<a@example.com>"), ["503 5.5.1 EHLO/HELO first please"])

    def test_rcpt_before_mail(self) -> None:
        """RCPT before MAIL is refused with Postal's 503."""
        self.assertEqual(self.send("HELO x", "RCPT TO:<a@b.test>")[-1],
                         "503 5.5.1 EHLO/HELO and MAIL FROM first please")

    def test_data_before_rcpt(self) -> None:
        """DATA without an accepted recipient is refused with Postal's 503."""
        self.assertEqual(self.send("HELO x", "MAIL FROM:<a@example.com>", "DATA")[-1],
                         "503 5.5.1 HELO/EHLO, MAIL FROM and RCPT TO before sending data")

    def test_empty_and_invalid_rcpt(self) -> None:
        """An empty RCPT TO and one without a domain get Postal's 501s."""
        self.assertEqual(self.send("HELO x", "MAIL FROM:<>", "RCPT TO:<>", "RCPT TO:<nodomain>")[-2:], [
            "501 5.1.3 RCPT TO should not be empty", "501 5.1.3 Invalid RCPT TO"])

    def test_unauthenticated_relay(self) -> None:
        """Mail for an unknown address from an unknown client needs authentication (530)."""
        self.assertEqual(self.send("HELO x", "MAIL FROM:<a@x.test>", "RCPT TO:<b@gmail.test>")[-1],
                         "530 5.7.1 Authentication required")

    def test_empty_mail_from(self) -> None:
        """The null reverse path is accepted."""
        self.assertEqual(self.send("HELO x", "MAIL FROM:<>")[-1], "250 2.1.0 OK")


class SizeTests(SessionCase):
    def test_declared_size_over_limit(self) -> None:
        """A declared SIZE over the limit is refused at MAIL, before any data."""
        self.assertEqual(self.send("EHLO x", "MAIL FROM:<a@example.com> SIZE=2000000")[-1],
                         "552 5.3.4 Message size exceeds fixed maximum message size (1MB)")

    def test_declared_size_within_limit(self) -> None:
        """A declared SIZE within the limit, BODY=8BITMIME and SMTPUTF8 are accepted."""
        self.assertEqual(self.send("EHLO x", "MAIL FROM:<a@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8")[-1],
                         "250 2.1.0 OK")

    def test_unknown_parameter(self) -> None:
        """An unknown MAIL parameter is 555."""
        self.assertEqual(self.send("EHLO x", "MAIL FROM:<a@example.com> FOO=1")[-1],
                         "555 5.5.4 Unsupported MAIL FROM or RCPT TO parameter")

    def test_body_over_limit(self) -> None:
        """A message over the limit gets Postal's 552 at the end of DATA and nothing is stored."""
        self.auth_plain()
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA")
        self.transport.clear()
        chunk = b"x" * 1000 + b"\r\n"
        for _ in range(1100):
            self.protocol.dataReceived(chunk)
        self.assertEqual(self.send(b"."), ["552 5.3.4 Message too large (maximum size 1MB)"])
        self.assertEqual(count(self.pool, s.messages), 0)
        self.assertEqual(self.send("NOOP"), ["250 2.0.0 OK"])


class AuthTests(SessionCase):
    def test_plain(self) -> None:
        """AUTH PLAIN with the key as password grants org/server."""
        self.auth_plain()

    def test_plain_without_initial_response(self) -> None:
        """AUTH PLAIN alone gets an empty 334, then the credentials."""
        token = base64.b64encode(b"\0u\0" + SMTP_KEY.encode()).decode()
        self.assertEqual(self.send("EHLO x", "AUTH PLAIN")[-1], "334 ")
        self.assertEqual(self.send(token), ["235 2.7.0 Granted for acme/mail"])

    def test_plain_wrong_key(self) -> None:
        """A wrong key is 535 Invalid credential (after a delay)."""
        token = base64.b64encode(b"\0u\0wrongwrongwrong").decode()
        self.assertEqual(self.send("EHLO x", "AUTH PLAIN " + token)[-1], "250 AUTH CRAM-MD5 PLAIN LOGIN")
        self.transport.clear()
        self.clock.advance(1)
        self.assertEqual(self.transport.value(), b"535 5.7.8 Invalid credential\r\n")

    def test_plain_missing_parts(self) -> None:
        """PLAIN data without three parts is Postal's protocol error."""
        token = base64.b64encode(b"justone").decode()
        self.assertEqual(self.send("EHLO x", "AUTH PLAIN " + token)[-1],
                         "535 5.7.8 Authenticated failed - protocol error")

    def test_bad_base64(self) -> None:
        """Bad base64 in AUTH is 501 and the session carries on."""
        self.assertEqual(self.send("EHLO x", "AUTH PLAIN !!!notbase64", "NOOP")[-2:],
                         ["501 5.5.2 Invalid base64 data", "250 2.0.0 OK"])

    def test_login(self) -> None:
        """AUTH LOGIN asks for username and password; the password is the key."""
        self.assertEqual(self.send("EHLO x", "AUTH LOGIN")[-1], "334 VXNlcm5hbWU6")
        self.assertEqual(self.send(base64.b64encode(b"anyone").decode()), ["334 UGFzc3dvcmQ6"])
        self.assertEqual(self.send(base64.b64encode(SMTP_KEY.encode()).decode()),
                         ["235 2.7.0 Granted for acme/mail"])

    def test_cram_md5(self) -> None:
        """CRAM-MD5 with username org/server and an HMAC keyed by an SMTP key is granted."""
        challenge_line = self.send("EHLO x", "AUTH CRAM-MD5")[-1]
        challenge = base64.b64decode(challenge_line.split(" ", 1)[1])
        self.assertTrue(challenge.startswith(b"<") and challenge.endswith(f"@{HOSTNAME}>".encode()))
        digest = hmac.new(SMTP_KEY.encode(), challenge, "md5").hexdigest()
        answer = base64.b64encode(f"acme/mail {digest}".encode()).decode()
        self.assertEqual(self.send(answer), ["235 2.7.0 Granted for acme/mail"])

    def test_cram_md5_wrong(self) -> None:
        """A wrong CRAM-MD5 digest is 535 Denied."""
        self.send("EHLO x", "AUTH CRAM-MD5")
        self.transport.clear()
        self.protocol.dataReceived(base64.b64encode(b"acme/mail 00") + b"\r\n")
        self.clock.advance(5)
        self.assertEqual(self.transport.value(), b"535 5.7.8 Denied\r\n")

    def test_cancel(self) -> None:
        """A * line cancels the exchange."""
        self.send("EHLO x", "AUTH LOGIN")
        self.assertEqual(self.send("*"), ["501 5.0.0 Authentication cancelled"])

    def test_unknown_mechanism(self) -> None:
        """An unknown mechanism is 504."""
        self.assertEqual(self.send("EHLO x", "AUTH GSSAPI")[-1], "504 5.5.4 Unrecognized authentication type")

    def test_failures_limited_per_ip(self) -> None:
        """After max_auth_failures failures the IP gets 421 and is disconnected."""
        token = base64.b64encode(b"\0u\0wrongwrongwrong").decode()
        self.send("EHLO x")
        for _ in range(4):
            self.send("AUTH PLAIN " + token)
            self.clock.advance(10)
        self.transport.clear()
        self.protocol.dataReceived(f"AUTH PLAIN {token}\r\n".encode())
        self.assertEqual(self.transport.value(),
                         b"421 4.7.0 Too many authentication failures, closing connection\r\n")
        self.assertTrue(self.transport.disconnecting)
        other, transport = self.connect()
        transport.clear()
        other.dataReceived(b"EHLO x\r\nAUTH PLAIN " + token.encode() + b"\r\n")
        self.assertIn(b"421 4.7.0", transport.value())

    def test_secrets_not_logged(self) -> None:
        """No log event carries the AUTH secret."""
        from twisted.logger import ILogObserver, globalLogPublisher
        events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.auth_plain()
        self.assertNotIn(SMTP_KEY, repr(events))


class DataTests(SessionCase):
    def submit(self, *recipients: str, body: bytes = b"From: a@example.com\r\nSubject: Hi\r\n\r\nHello\r\n") -> list[str]:
        lines: list[bytes | str] = ["MAIL FROM:<a@example.com>"]
        lines += [f"RCPT TO:<{r}>" for r in recipients]
        lines += ["DATA", body + b"."]
        return self.send(*lines)

    def test_outgoing_message_stored(self) -> None:
        """An authenticated message gets 250 after one message row per recipient sharing one raw message."""
        self.auth_plain()
        self.assertEqual(self.submit("b@gmail.test", "c@yahoo.test"),
                         ["250 2.1.0 OK", "250 2.1.5 OK", "250 2.1.5 OK", "354 Go ahead", "250 2.0.0 OK"])
        rows = messages(self.pool)
        self.assertEqual([(m["scope"], m["rcpt_to"], m["subject"]) for m in rows],
                         [("outgoing", "b@gmail.test", "Hi"), ("outgoing", "c@yahoo.test", "Hi")])
        self.assertEqual(rows[0]["raw_message_id"], rows[1]["raw_message_id"])
        self.assertEqual(rows[0]["domain_id"], self.account.domain_id)
        self.assertEqual(rows[0]["credential_id"], self.account.smtp_credential_id)
        self.assertEqual(count(self.pool, s.queued_messages), 2)
        stored = raw(self.pool, rows[0]["raw_message_id"])
        self.assertTrue(stored.startswith(
            f"Received: from client.test ({self.client_ip} [{self.client_ip}]) by {HOSTNAME} with SMTP; ".encode()))
        self.assertTrue(stored.endswith(b"From: a@example.com\r\nSubject: Hi\r\n\r\nHello\r\n"))

    def test_from_not_authorised(self) -> None:
        """An authenticated message From an unverified domain gets Postal's 530."""
        self.auth_plain()
        self.assertEqual(self.submit("b@gmail.test", body=b"From: a@other.test\r\n\r\nx\r\n")[-1],
                         "530 5.7.1 From/Sender name is not valid")
        self.assertEqual(count(self.pool, s.messages), 0)

    def test_loop_detected(self) -> None:
        """More than four Received headers naming us is Postal's 550 Loop detected."""
        self.auth_plain()
        loop = f"Received: from a by {HOSTNAME} with SMTP; x\r\n".encode() * 5
        self.assertEqual(self.submit("b@gmail.test", body=loop + b"From: a@example.com\r\n\r\nx\r\n")[-1],
                         "550 5.4.6 Loop detected")

    def test_privacy_mode(self) -> None:
        """With privacy mode on the authenticated server the Received header leaves out the client."""
        from sqlalchemy import update
        self.pool.call("privacy", lambda c: c.execute(update(s.servers).values(privacy_mode=True)) and None)
        self.auth_plain()
        self.submit("b@gmail.test")
        stored = raw(self.pool, messages(self.pool)[0]["raw_message_id"])
        self.assertTrue(stored.startswith(f"Received: by {HOSTNAME} with SMTP; ".encode()))

    def test_route_message(self) -> None:
        """Unauthenticated mail to a route address is stored as incoming for that route's endpoint."""
        self.assertEqual(self.send("HELO client.test")[-1], f"250 {HOSTNAME}")
        self.assertEqual(self.submit("support@in.example.net")[-1], "250 2.0.0 OK")
        row = messages(self.pool)[0]
        self.assertEqual((row["scope"], row["route_id"], row["endpoint_type"], row["endpoint_id"]),
                         ("incoming", self.account.route_id, "HTTPEndpoint", 7))

    def test_two_transactions(self) -> None:
        """Several transactions on one connection are each stored."""
        self.auth_plain()
        self.submit("b@gmail.test")
        self.submit("c@gmail.test")
        self.assertEqual(count(self.pool, s.raw_messages), 2)

    def test_suspended_server(self) -> None:
        """Recipients of a suspended server get Postal's 535, for routes and for relay."""
        from sqlalchemy import update
        self.pool.call("suspend", lambda c: c.execute(update(s.servers).values(suspended_at=1.0)) and None)
        self.assertEqual(self.send("HELO x", "MAIL FROM:<a@example.com>", "RCPT TO:<support@in.example.net>")[-1],
                         "535 5.7.1 Mail server has been suspended")
        self.auth_plain()
        self.assertEqual(self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>")[-1],
                         "535 5.7.1 Mail server has been suspended")


class AuthWithoutTLSTests(SessionCase):
    factory_options = {"tls_available": True, "tls_options": object()}

    def test_auth_hidden_until_starttls(self) -> None:
        """With TLS configured, EHLO offers STARTTLS but not AUTH, and AUTH is refused."""
        replies = self.send("EHLO x", "AUTH PLAIN")
        self.assertEqual(replies[-3:-1], ["250-CHUNKING", "250 STARTTLS"])
        self.assertEqual(replies[-1], "530 5.7.0 Must issue a STARTTLS command first")

    def test_allow_auth_without_tls(self) -> None:
        """smtp_server.allow_auth_without_tls offers AUTH before STARTTLS."""
        self.factory = make_factory(
            self.pool, self.clock, tls_available=True, tls_options=object(), allow_auth_without_tls=True)
        self.protocol, self.transport = self.connect()
        self.assertEqual(self.send("EHLO x")[-2:], ["250-STARTTLS", "250 AUTH CRAM-MD5 PLAIN LOGIN"])

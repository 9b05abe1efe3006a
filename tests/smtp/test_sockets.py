# -*- test-case-name: tests.smtp.test_sockets -*-
"""
The real C{twistd -n postal-smtp} over real sockets: smtplib (STARTTLS with
a generated certificate, each AUTH mechanism, implicit TLS), swaks with
PIPELINING, and Postfix's smtp-source.
"""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from postal.db import schema as s
from tests.smtp.certs import write_test_certificate
from tests.smtp.fixtures import SMTP_KEY, count, messages
from tests.smtp.server import free_port, prepare_server

MESSAGE = b"From: a@example.com\r\nSubject: socket test\r\n\r\nHello\r\n"


class TLSServerTests(SynchronousTestCase):
    """A TLS-enabled server process (STARTTLS and implicit TLS)."""

    def setUp(self) -> None:
        self.tls_port = free_port()
        self.server = prepare_server(self, ip_network="127.0.0.1/32")
        cert, key = write_test_certificate(self.server.folder)
        with open(self.server.config_path, "a") as f:
            f.write(f"  tls_enabled: true\n  tls_certificate_path: {cert}\n"
                    f"  tls_private_key_path: {key}\n  tls_port: {self.tls_port}\n")
        self.server.start()

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def submit_with(self, mechanism: str) -> None:
        before = count(self.server.pool, s.messages)
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as smtp:
            smtp.ehlo()
            self.assertNotIn("auth", smtp.esmtp_features)  # only after STARTTLS
            smtp.starttls(context=self.context())
            smtp.ehlo()
            self.assertNotIn("starttls", smtp.esmtp_features)
            smtp.user, smtp.password = "acme/mail", SMTP_KEY
            code, text = smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))
            self.assertEqual((code, text), (235, b"2.7.0 Granted for acme/mail"))
            self.assertEqual(smtp.sendmail("a@example.com", ["b@gmail.test"], MESSAGE), {})
        self.assertEqual(count(self.server.pool, s.messages), before + 1)
        self.assertEqual(messages(self.server.pool)[-1]["received_with_ssl"], True)

    def test_starttls_plain(self) -> None:
        """smtplib: STARTTLS, then AUTH PLAIN, then a message is stored."""
        self.submit_with("PLAIN")

    def test_starttls_login(self) -> None:
        """smtplib: STARTTLS, then AUTH LOGIN."""
        self.submit_with("LOGIN")

    def test_starttls_cram_md5(self) -> None:
        """smtplib: STARTTLS, then AUTH CRAM-MD5 with username org/server."""
        self.submit_with("CRAM-MD5")

    def test_auth_refused_before_tls(self) -> None:
        """AUTH before STARTTLS is refused when TLS is configured."""
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as smtp:
            smtp.ehlo()
            self.assertEqual(smtp.docmd("AUTH", "PLAIN"), (530, b"5.7.0 Must issue a STARTTLS command first"))

    def test_implicit_tls(self) -> None:
        """The implicit-TLS port speaks TLS at once and offers AUTH."""
        with smtplib.SMTP_SSL("127.0.0.1", self.tls_port, timeout=10, context=self.context()) as smtp:
            smtp.ehlo()
            self.assertIn("auth", smtp.esmtp_features)
            smtp.login("x", SMTP_KEY)
            self.assertEqual(smtp.sendmail("a@example.com", ["b@gmail.test"], MESSAGE), {})

    def test_swaks_pipelining(self) -> None:
        """swaks with --pipeline (SMTP-IP credential for 127.0.0.1) gets every reply right."""
        if shutil.which("swaks") is None:
            raise SkipTest("swaks is not installed")
        before = count(self.server.pool, s.messages)
        result = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{self.server.port}", "--pipeline", "--from", "a@example.com",
             "--to", "b@gmail.test,c@gmail.test", "--h-From", "a@example.com", "--timeout", "10"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("250 2.0.0 OK", result.stdout)
        self.assertEqual(count(self.server.pool, s.messages), before + 2)

    def test_smtp_source(self) -> None:
        """Postfix's smtp-source: 5 sessions, 40 messages of 5 recipients, all stored."""
        if shutil.which("smtp-source") is None:
            raise SkipTest("smtp-source is not installed")
        before = count(self.server.pool, s.messages)
        result = subprocess.run(
            ["smtp-source", "-s", "5", "-m", "40", "-r", "5", "-l", "2048", "-d", "-f", "a@example.com",
             "-t", "rcpt@gmail.test", f"127.0.0.1:{self.server.port}"],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(count(self.server.pool, s.messages), before + 200)


class ProxyProtocolTests(SynchronousTestCase):
    def test_proxy_v1_client_address(self) -> None:
        """Behind PROXY protocol v1 the client address in Received is the proxied one."""
        import socket
        server = prepare_server(self, ip_network="203.0.113.0/24", extra="  proxy_protocol: true\n")
        server.start()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 25\r\n")
            with smtplib.SMTP(timeout=10) as smtp:
                smtp.sock = sock
                smtp.file = None
                self.assertEqual(smtp.getreply()[0], 220)
                self.assertEqual(smtp.sendmail("a@example.com", ["b@gmail.test"], MESSAGE), {})
        from tests.smtp.fixtures import raw
        stored = raw(server.pool, messages(server.pool)[0]["raw_message_id"])
        self.assertIn(b"(203.0.113.9 [203.0.113.9])", stored)


class CertificateReloadTests(SynchronousTestCase):
    def test_sighup_reloads_certificate(self) -> None:
        """After the files change and SIGHUP arrives, new TLS connections get the new certificate."""
        import signal
        server = prepare_server(self)
        cert, key = write_test_certificate(server.folder)
        with open(server.config_path, "a") as f:
            f.write(f"  tls_enabled: true\n  tls_certificate_path: {cert}\n  tls_private_key_path: {key}\n")
        server.start()

        def served_certificate() -> bytes:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
                smtp.starttls(context=context)
                return bytes(smtp.sock.getpeercert(binary_form=True))  # type: ignore[union-attr]

        first = served_certificate()
        write_test_certificate(server.folder)
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            second = served_certificate()
            if second != first:
                break
        self.assertNotEqual(first, second)


class STARTTLSInjectionTests(SynchronousTestCase):
    def test_commands_pipelined_with_starttls_are_dropped(self) -> None:
        """Commands sent in the clear after STARTTLS (CVE-2011-0411 style) are never answered."""
        import socket
        server = prepare_server(self)
        cert, key = write_test_certificate(server.folder)
        with open(server.config_path, "a") as f:
            f.write(f"  tls_enabled: true\n  tls_certificate_path: {cert}\n  tls_private_key_path: {key}\n")
        server.start()
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw_socket:
            reader = raw_socket.makefile("rb")
            reader.readline()
            raw_socket.sendall(b"EHLO x\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            raw_socket.sendall(b"STARTTLS\r\nRSET\r\n")
            self.assertEqual(reader.readline(), b"220 2.0.0 Ready to start TLS\r\n")
            with context.wrap_socket(raw_socket) as tls:
                tls.sendall(b"NOOP\r\n")
                self.assertEqual(tls.recv(1024), b"250 2.0.0 OK\r\n")
                tls.sendall(b"QUIT\r\n")
                self.assertEqual(tls.recv(1024), b"221 2.0.0 Closing Connection\r\n")

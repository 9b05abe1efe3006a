"""
A scripted SMTP server for client tests: real sockets on 127.0.0.1, with
knobs for every fault the worker must survive (421 greeting, 452 on RCPT,
dropping mid-DATA, never answering, STARTTLS with a test CA).
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl
from twisted.internet.protocol import Factory, Protocol

__all__ = ["Script", "ScriptedSMTPFactory", "TestCA", "make_test_ca"]


@attrs.define
class Script:
    greeting: str = "220 scripted ESMTP"
    pipelining: bool = True
    starttls: bool = False
    tls_options: Any = None
    mail_reply: str = "250 OK"
    rcpt_reply: str = "250 OK"
    #: "reply" (send data_reply), "drop" (close mid-DATA), "drop-after" (close instead of the final reply), "silent".
    data_mode: str = "reply"
    data_reply: str = "250 2.0.0 queued as 12345"
    #: Messages received (envelope, data) and connections made.
    messages: list[tuple[str, str, bytes]] = attrs.field(factory=list)
    connections: int = 0
    commands: list[str] = attrs.field(factory=list)
    open: list[Any] = attrs.field(factory=list)
    close_waiters: list[Any] = attrs.field(factory=list)

    def all_closed(self) -> Any:
        """A Deferred firing once no server-side connection is open."""
        from twisted.internet.defer import Deferred, succeed
        if not self.open:
            return succeed(None)
        d: Any = Deferred()
        self.close_waiters.append(d)
        return d


class _ScriptedSMTP(Protocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.buffer = b""
        self.in_data = False
        self.data = b""
        self.mail = ""
        self.rcpt = ""

    def connectionMade(self) -> None:
        self.script.connections += 1
        self.script.open.append(self)
        self.reply(self.script.greeting)
        if self.script.greeting.startswith("421"):
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        self.script.open.remove(self)
        for d in list(self.script.close_waiters):
            if not self.script.open:
                self.script.close_waiters.remove(d)
                d.callback(None)

    def reply(self, text: str) -> None:
        self.transport.write(text.encode() + b"\r\n")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\r\n")
            if self.in_data:
                self.data_line(line)
            else:
                self.command(line.decode())

    def data_line(self, line: bytes) -> None:
        if line == b".":
            self.in_data = False
            self.script.messages.append((self.mail, self.rcpt, self.data))
            mode = self.script.data_mode
            if mode == "reply":
                self.reply(self.script.data_reply)
            elif mode == "drop-after":
                self.transport.loseConnection()  # type: ignore[union-attr]
            return
        if self.script.data_mode == "drop":
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.data += (line[1:] if line.startswith(b"..") else line) + b"\r\n"

    def command(self, line: str) -> None:
        self.script.commands.append(line)
        verb = line.split(" ", 1)[0].upper()
        if verb == "EHLO":
            caps = ["250-scripted"] + (["250-PIPELINING"] if self.script.pipelining else [])
            if self.script.starttls and not getattr(self, "tls", False):
                caps.append("250-STARTTLS")
            caps.append("250 8BITMIME")
            self.reply("\r\n".join(caps))
        elif verb == "STARTTLS":
            self.reply("220 go ahead")
            self.tls = True
            self.transport.startTLS(self.script.tls_options)  # type: ignore[union-attr]
        elif verb == "MAIL":
            self.mail = line
            self.data = b""
            self.reply(self.script.mail_reply)
        elif verb == "RCPT":
            self.rcpt = line
            self.reply(self.script.rcpt_reply)
        elif verb == "DATA":
            if self.script.rcpt_reply.startswith("2"):
                self.in_data = True
                self.reply("354 go on")
            else:
                self.reply("554 no valid recipients")
        elif verb in ("RSET", "NOOP", "HELO"):
            self.reply("250 OK")
        elif verb == "QUIT":
            self.reply("221 bye")
            self.transport.loseConnection()  # type: ignore[union-attr]
        else:
            self.reply("502 unknown")


class ScriptedSMTPFactory(Factory):
    def __init__(self, script: Script) -> None:
        self.script = script

    def buildProtocol(self, addr: Any) -> Protocol:
        return _ScriptedSMTP(self.script)


@attrs.frozen
class TestCA:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    server_options: Any
    trust_root: Any


def make_test_ca(hostname: str = "mx.dest.test") -> TestCA:
    """A CA and a server certificate for C{hostname} (and 127.0.0.1) it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "txpostal test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    server_options = ssl.PrivateCertificate.loadPEM(key_pem + cert_pem).options()
    return TestCA(ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem, server_options=server_options, trust_root=ssl.Certificate.loadPEM(ca_pem))

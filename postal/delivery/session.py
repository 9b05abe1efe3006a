# -*- test-case-name: tests.delivery.test_smtp_client,tests.delivery.test_sender -*-
"""
One SMTP session to one remote host: connect, greeting, EHLO, the SSL mode
(postal-behaviour.md section 5.1), then any number of messages, each
pipelined when the server offers PIPELINING.

Failures are exceptions carrying what the delivery pipeline needs to
classify them: L{SessionOpenFailed} (try the next host), L{TLSFailed}
(C{Auto} retries once without TLS), and per message a L{Reply} or
L{MessageFailed}.
"""

from __future__ import annotations

from typing import Callable

import attrs
from twisted.internet.endpoints import connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS

from postal.delivery.smtp_client import (
    ConnectionDropped, Reply, ReplyTimeout, SMTPClientProtocol, dot_stuff,
)

__all__ = [
    "SSL_MODES", "SessionSettings", "SMTPSession", "SessionOpenFailed", "TLSFailed", "MessageFailed",
    "open_session",
]

SSL_MODES = ("None", "Auto", "STARTTLS", "TLS")

#: Makes the plain TCP endpoint for an address and port.
EndpointFactory = Callable[[str, int], IStreamClientEndpoint]


class SessionOpenFailed(Exception):
    """No usable session with this host (connect, greeting or EHLO failed)."""


class TLSFailed(SessionOpenFailed):
    """The TLS handshake (STARTTLS or implicit) failed or was refused."""


class MessageFailed(Exception):
    """
    The message could not be completed on this session (timeout, dropped
    connection).  C{data_sent} says whether the final dot went out: if it
    did, the remote may have accepted the message.
    """

    def __init__(self, text: str, data_sent: bool) -> None:
        super().__init__(text)
        self.data_sent = data_sent


@attrs.frozen
class SessionSettings:
    helo_hostname: str
    ssl_mode: str = "Auto"
    read_timeout: float = 30.0
    trust_root: object | None = None


def _tls_options(hostname: str, verify: bool, trust_root: object | None) -> object:
    if not verify:
        return CertificateOptions()
    if trust_root is None:
        return optionsForClientTLS(hostname)
    return optionsForClientTLS(hostname, trustRoot=trust_root)  # type: ignore[arg-type]


@attrs.define
class SMTPSession:
    """An open session; C{deliver} may be called again after each result."""

    protocol: SMTPClientProtocol
    hostname: str
    address: str
    port: int
    extensions: frozenset[str]
    tls: bool
    messages_sent: int = 0

    @property
    def label(self) -> str:
        """How Postal names the host in details: C{ip:port (hostname)}."""
        return f"{self.address}:{self.port} ({self.hostname})"

    @property
    def usable(self) -> bool:
        return not self.protocol.closed

    async def deliver(self, mail_from: str, rcpt_to: str, data: bytes) -> Reply:
        """
        Send one message; returns the reply that decides it (the first
        negative one, or the final reply after the data).
        @raise MessageFailed: on a timeout or a dropped connection.
        """
        proto = self.protocol
        commands = [f"MAIL FROM:<{mail_from}>", f"RCPT TO:<{rcpt_to}>", "DATA"]
        data_sent = False
        try:
            if "PIPELINING" in self.extensions:
                proto.send("".join(c + "\r\n" for c in commands).encode("utf-8"))
                replies = [proto.expect() for _ in commands]
                results = [await d for d in replies]
            else:
                results = []
                for command in commands:
                    reply = await proto.command(command)
                    results.append(reply)
                    if not reply.positive:
                        break
            for reply in results:
                if not reply.positive:
                    if results[-1].code == 354:
                        # RFC 2920: DATA was accepted although a recipient was
                        # not; never send the message, drop the session.
                        proto.abort()
                    else:
                        await self._reset()
                    return reply
            proto.send(dot_stuff(data))
            data_sent = True
            final = await proto.expect()
        except (ReplyTimeout, ConnectionDropped) as e:
            proto.abort()
            raise MessageFailed(str(e), data_sent) from e
        if final.positive:
            self.messages_sent += 1
        else:
            await self._reset()
        return final

    async def _reset(self) -> None:
        try:
            reply = await self.protocol.command("RSET")
        except (ReplyTimeout, ConnectionDropped):
            return
        if not reply.positive:
            self.protocol.abort()

    async def quit(self) -> None:
        if self.protocol.closed:
            return
        try:
            await self.protocol.command("QUIT")
        except (ReplyTimeout, ConnectionDropped):
            pass
        self.protocol.close()
        await self.protocol.when_closed()


async def _ehlo(proto: SMTPClientProtocol, helo: str) -> frozenset[str]:
    reply = await proto.command(f"EHLO {helo}")
    if reply.positive:
        return frozenset(line.split(" ", 1)[0].upper() for line in reply.lines[1:])
    reply = await proto.command(f"HELO {helo}")
    if not reply.positive:
        raise SessionOpenFailed(f"HELO rejected: {reply}")
    return frozenset()


async def _starttls(proto: SMTPClientProtocol, hostname: str, settings: SessionSettings) -> frozenset[str]:
    reply = await proto.command("STARTTLS")
    if reply.code != 220:
        raise TLSFailed(f"STARTTLS refused: {reply}")
    verify = settings.ssl_mode == "STARTTLS"
    proto.transport.startTLS(_tls_options(hostname, verify, settings.trust_root))  # type: ignore[union-attr]
    try:
        return await _ehlo(proto, settings.helo_hostname)
    except (ReplyTimeout, ConnectionDropped) as e:
        raise TLSFailed(f"TLS handshake with {hostname} failed: {e}") from e


async def open_session(
    clock: IReactorTime, endpoint_factory: EndpointFactory, hostname: str, address: str, port: int,
    settings: SessionSettings,
) -> SMTPSession:
    """
    Connect to C{address:port} (the host C{hostname}) and get a session
    ready for C{MAIL}, with TLS as C{settings.ssl_mode} says.
    @raise SessionOpenFailed: the session could not be opened.
    """
    endpoint = endpoint_factory(address, port)
    implicit_tls = settings.ssl_mode == "TLS"
    if implicit_tls:
        endpoint = wrapClientTLS(_tls_options(hostname, True, settings.trust_root), endpoint)  # type: ignore[arg-type]
    proto = SMTPClientProtocol(clock, settings.read_timeout)
    try:
        await connectProtocol(endpoint, proto)
    except Exception as e:
        raise SessionOpenFailed(f"connection to {address}:{port} failed: {e}") from e
    try:
        greeting = await proto.expect()
    except (ReplyTimeout, ConnectionDropped) as e:
        proto.abort()
        if implicit_tls:
            raise TLSFailed(f"TLS connection to {hostname} failed: {e}") from e
        raise SessionOpenFailed(f"no greeting from {address}:{port}: {e}") from e
    try:
        if greeting.code != 220:
            raise SessionOpenFailed(f"{address}:{port} greeted with {greeting}")
        extensions = await _ehlo(proto, settings.helo_hostname)
        tls = implicit_tls
        if settings.ssl_mode in ("Auto", "STARTTLS") and "STARTTLS" in extensions:
            extensions = await _starttls(proto, hostname, settings)
            tls = True
        elif settings.ssl_mode == "STARTTLS":
            raise TLSFailed(f"{hostname} does not offer STARTTLS")
    except (ReplyTimeout, ConnectionDropped) as e:
        proto.abort()
        raise SessionOpenFailed(f"session with {address}:{port} failed: {e}") from e
    except SessionOpenFailed:
        proto.abort()
        raise
    return SMTPSession(protocol=proto, hostname=hostname, address=address, port=port,
                       extensions=extensions, tls=tls)

# -*- test-case-name: tests.smtp.test_sockets -*-
"""
PROXY protocol v1 and v2 in front of the SMTP server (Twisted's parser),
with Postal's behaviour: no banner until the PROXY header has arrived, and
C{502 Proxy Error} then a close for anything else.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.protocols.haproxy import _wrapper
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser

from zope.interface import directlyProvides, providedBy

from postal.smtp import replies as r
from postal.smtp.metrics import CLIENT_ERRORS, COMMANDS

__all__ = ["ProxyWrappingFactory"]

_V1 = b"PROXY"


class _ProxyProtocolWrapper(_wrapper.HAProxyProtocolWrapper):
    """Connects the SMTP protocol only once the client's real address is known."""

    _header_timeout: IDelayedCall | None = None

    def makeConnection(self, transport: Any) -> None:
        # ProtocolWrapper would connect the SMTP protocol now (and send the
        # banner); wait for the PROXY header instead.
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        smtp = self.factory.wrappedFactory
        self._header_timeout = smtp.clock.callLater(smtp.idle_timeout, self._no_header)

    def _no_header(self) -> None:
        """A client that never sends the PROXY header is closed like an idle one."""
        self._header_timeout = None
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _cancel_header_timeout(self) -> None:
        if self._header_timeout is not None and self._header_timeout.active():
            self._header_timeout.cancel()
        self._header_timeout = None

    def _refuse(self) -> None:
        CLIENT_ERRORS.labels("proxy-error").inc()
        self.transport.write(r.R502_PROXY_ERROR.to_bytes())  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self._proxyInfo is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        if self._parser is None:
            if len(data) >= 16 and data[:12] == V2Parser.PREFIX:
                self._parser = V2Parser()
            elif data.startswith(_V1):
                self._parser = V1Parser()
            else:
                self._refuse()
                return
        try:
            self._proxyInfo, remaining = self._parser.feed(data)
        except InvalidProxyHeader:
            self._refuse()
            return
        if self._proxyInfo is not None:
            self._cancel_header_timeout()
            COMMANDS.labels("PROXY").inc()
            self.wrappedProtocol.makeConnection(self)  # type: ignore[arg-type]
            if remaining:
                self.wrappedProtocol.dataReceived(remaining)

    def connectionLost(self, reason: Any = None) -> None:  # type: ignore[override]
        self._cancel_header_timeout()
        if self._proxyInfo is not None:
            super().connectionLost(reason)  # type: ignore[no-untyped-call]
        else:
            self.factory.unregisterProtocol(self)


class ProxyWrappingFactory(_wrapper.HAProxyWrappingFactory):
    protocol = _ProxyProtocolWrapper  # type: ignore[assignment]

# -*- test-case-name: tests.supervisor.test_sockets -*-
"""
Ports before start-up: check that every port the plan uses can be bound
(and that no two keys name the same one), and bind the listeners that
several processes of a role share, so the children can inherit them.

The check binds and closes at once, with C{SO_REUSEADDR} as Twisted's own
listeners use, so a port left in C{TIME_WAIT} by the last run is free and a
port another process listens on is not.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Iterable

from postal.supervisor.plan import Listener, PortUse

__all__ = ["PortUnavailable", "check_ports", "bind_listener", "bind_shared"]


class PortUnavailable(Exception):
    """A port the configuration names cannot be bound; the message says which key and why."""


def _family(interface: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in interface else socket.AF_INET


def bind_listener(interface: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on C{interface:port} (non-blocking, close-on-exec)."""
    sock = socket.socket(_family(interface), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _why(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "is already in use"
    if error.errno == errno.EACCES:
        return "needs privileges to bind (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    if error.errno == errno.EADDRNOTAVAIL:
        return "names an address this host does not have"
    return f"cannot be bound ({os.strerror(error.errno) if error.errno else error})"


def _describe(use: PortUse) -> str:
    return f"{use.key}: port {use.port} on {use.interface}"


def check_ports(uses: Iterable[PortUse]) -> None:
    """
    Raise L{PortUnavailable} for the first port named twice or not bindable.
    Port 0 (disabled) is skipped.
    """
    seen: dict[int, PortUse] = {}
    for use in uses:
        if not use.port:
            continue
        if use.port in seen:
            raise PortUnavailable(f"{_describe(use)} is also {seen[use.port].key}")
        seen[use.port] = use
        try:
            bind_listener(use.interface, use.port, backlog=1).close()
        except OSError as e:
            raise PortUnavailable(f"{_describe(use)} {_why(e)}") from None


def bind_shared(listeners: Iterable[Listener]) -> dict[str, socket.socket]:
    """
    Bind every shared listener; on a failure close what was bound and
    raise L{PortUnavailable}.
    """
    bound: dict[str, socket.socket] = {}
    for listener in listeners:
        try:
            bound[listener.name] = bind_listener(listener.interface, listener.port)
        except OSError as e:
            for sock in bound.values():
                sock.close()
            use = PortUse(listener.interface, listener.port, listener.key, shared=True)
            raise PortUnavailable(f"{_describe(use)} {_why(e)}") from None
    return bound

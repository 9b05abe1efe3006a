"""
Helpers for tests over real sockets and real processes: free ports, waiting
on a condition with a deadline (never time.sleep), and collecting a child
process's output.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

__all__ = ["free_port", "listening", "wait_until", "ProcessOutput"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:C{port}."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> Deferred[None]:
    """Fires once C{check()} is true; fails with AssertionError after C{timeout} seconds."""
    from twisted.internet import reactor

    clock: Any = reactor
    d: Deferred[None] = Deferred()
    deadline = clock.seconds() + timeout

    def poll() -> None:
        if check():
            d.callback(None)
        elif clock.seconds() > deadline:
            d.errback(AssertionError(f"timed out after {timeout} s waiting"))
        else:
            clock.callLater(step, poll)

    poll()
    return d


class ProcessOutput(ProcessProtocol):
    """Keeps a child's stdout and stderr; C{ended} fires when it exits."""

    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)

# -*- test-case-name: tests.supervisor.test_control -*-
"""
The control channel: a UNIX socket (mode 0600, in C{<config dir>/run})
speaking one JSON object per line each way.  Requests:
C{{"command": "status"}} and C{{"command": "restart", "role": ROLE|null}}.
Answers: the status mapping, C{{"restarted": [names]}} or C{{"error": text}}.

L{request} is the synchronous client the C{postal} command uses.
"""

from __future__ import annotations

import errno
import json
import socket
from typing import Any, Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

__all__ = ["Commands", "ControlProtocol", "control_factory", "request", "SupervisorNotRunning",
           "socket_in_use"]

#: Longest path a UNIX socket address may have on Linux.
MAX_SOCKET_PATH = 107

Commands = dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]


class SupervisorNotRunning(Exception):
    """Nothing answers on the control socket."""


class ControlProtocol(LineOnlyReceiver):
    """One request line in, one answer line out, then close."""

    delimiter = b"\n"
    MAX_LENGTH = 4096
    log = Logger()

    def __init__(self, commands: Commands) -> None:
        self._commands = commands

    def lineReceived(self, line: bytes) -> None:
        Deferred.fromCoroutine(self._answer(line))

    async def _answer(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            command = message.get("command") if isinstance(message, dict) else None
            handler = self._commands.get(command) if isinstance(command, str) else None
            if handler is None:
                answer: dict[str, Any] = {"error": "unknown command"}
            else:
                answer = await handler(message)
        except ValueError:
            answer = {"error": "not a JSON object"}
        except Exception as e:
            self.log.failure("Control command failed")
            answer = {"error": f"{type(e).__name__}: {e}"}
        if self.transport is not None:
            self.transport.write(json.dumps(answer).encode("utf-8") + b"\n")
            self.transport.loseConnection()


def control_factory(commands: Commands) -> Factory[ControlProtocol]:
    factory = Factory.forProtocol(lambda: ControlProtocol(commands))
    factory.noisy = False
    return factory


def request(path: str, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """
    Send C{message} to the supervisor at C{path} and return its answer.

    @raise SupervisorNotRunning: no socket, or nothing listening on it.
    """
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        try:
            client.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise SupervisorNotRunning(path) from None
        client.sendall(json.dumps(message).encode("utf-8") + b"\n")
        chunks = []
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        client.close()
    answer = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(answer, dict):
        raise ValueError("the supervisor answered something other than a JSON object")
    return answer


def socket_in_use(path: str) -> bool:
    """True when a process accepts connections on the UNIX socket at C{path}."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return False
        raise
    finally:
        probe.close()
    return True

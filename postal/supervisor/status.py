# -*- test-case-name: tests.supervisor.test_status -*-
"""
What C{postal status} shows: each child's pid, uptime, restart count and
what its C{/health} endpoint answered just now (all probed at once, each
bounded by a timeout).
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable

from urllib.parse import urlsplit

from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from postal.supervisor.monitor import RoleMonitor
from postal.supervisor.plan import ChildSpec

__all__ = ["HealthProbe", "http_probe", "collect_status"]

#: Seconds a health endpoint gets to answer before status reports a timeout.
HEALTH_TIMEOUT = 2.0

HealthProbe = Callable[[str], Awaitable[dict[str, Any]]]


class _OneResponse(Protocol):
    """Sends one HTTP/1.0 GET and collects the whole answer until the server closes."""

    def __init__(self, path: str, host: str) -> None:
        self._request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii")
        self._chunks: list[bytes] = []
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.callback(b"".join(self._chunks))


class _QuietFactory(Factory):
    """Hands out one protocol without the start/stop lines a factory logs by default."""

    noisy = False

    def __init__(self, protocol: _OneResponse) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: Any) -> _OneResponse:
        return self._protocol


def _short(error: Exception) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (TimeoutError, CancelledError)):
        return "no answer in time"
    return f"{type(error).__name__}: {error}".strip()


def _parse(answer: bytes) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[1].isdigit():
        return {"error": "not an HTTP response"}
    return {"status": int(status[1]), "body": body.decode("utf-8", "replace").strip()[:200]}


def http_probe(reactor: Any, timeout: float = HEALTH_TIMEOUT) -> HealthProbe:
    """
    A probe that GETs a health URL: C{{"status": 200, "body": "OK"}} or
    C{{"error": ...}}.  Plain HTTP/1.0 over a TCP endpoint: the health
    sites are ours, and an HTTP client would log two lines per probe.
    """

    async def probe(url: str) -> dict[str, Any]:
        parsed = urlsplit(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
        protocol = _OneResponse(parsed.path or "/", host)
        try:
            connected = endpoint.connect(_QuietFactory(protocol))
            connected.addTimeout(timeout, reactor)
            await connected
            answer = await protocol.done.addTimeout(timeout, reactor)
        except Exception as e:  # any failure is the answer we report
            if protocol.transport is not None:
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
            return {"error": _short(e)}
        return _parse(answer)

    return probe


async def _child_status(monitor: RoleMonitor, spec: ChildSpec, probe: HealthProbe) -> dict[str, Any]:
    pid = monitor.pid(spec.name)
    entry: dict[str, Any] = {
        "name": spec.name, "role": spec.role, "instance": spec.instance,
        "running": pid is not None, "pid": pid, "uptime": monitor.uptime(spec.name),
        "restarts": max(monitor.starts.get(spec.name, 0) - 1, 0),
        "health": {"url": spec.health_url},
    }
    if spec.health_url is not None and pid is not None:
        entry["health"].update(await probe(spec.health_url))
    return entry


async def collect_status(monitor: RoleMonitor, probe: HealthProbe, started_at: float,
                         now: float, config_path: str | None) -> dict[str, Any]:
    """The supervisor's status as one JSON-ready mapping."""
    pending = [Deferred.fromCoroutine(_child_status(monitor, spec, probe))
               for spec in monitor.plan.children]
    results = await DeferredList(pending, consumeErrors=True)
    children = [value for ok, value in results if ok]
    return {
        "supervisor": {"pid": os.getpid(), "uptime": now - started_at, "config": config_path},
        "children": children,
        "skipped_roles": list(monitor.plan.skipped),
    }

# -*- test-case-name: tests.test_health -*-
"""
The health site every role serves: C{/health} says whether the database
answers, C{/metrics} is Prometheus text, C{/} names the process.
"""

from __future__ import annotations

import os
import socket
from typing import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from postal.db.pool import TransactionPool

__all__ = ["HealthResource", "health_site", "database_answers"]

log = Logger()


def _ping_txn(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


#: How long /health waits for the database before answering 503.
CHECK_TIMEOUT = 5.0


async def database_answers(pool: TransactionPool, clock: IReactorTime | None = None,
                           timeout: float = CHECK_TIMEOUT) -> bool:
    """
    Whether C{SELECT 1} succeeds, within C{timeout} seconds on C{clock} when
    a clock is given (a database that hangs is as bad as one that fails).
    """
    attempt = pool.run_in_transaction("health_check", _ping_txn)
    if clock is not None:
        attempt.addTimeout(timeout, clock)
    try:
        return await attempt == 1
    except Exception:
        log.failure("Health check: the database did not answer")
        return False


class _Health(Resource):
    isLeaf = True

    def __init__(self, check: Callable[[], Awaitable[bool]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._check = check

    def render_GET(self, request: Request) -> object:
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        async def respond() -> None:
            healthy = await self._check()
            if gone:  # the client hung up while we asked the database
                return
            request.setResponseCode(200 if healthy else 503)
            request.setHeader(b"content-type", b"text/plain")
            request.write(b"OK" if healthy else b"Database unavailable")
            request.finish()

        Deferred.fromCoroutine(respond())
        return NOT_DONE_YET


class _Metrics(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return bytes(generate_latest(REGISTRY))


class HealthResource(Resource):
    """C{/}, C{/health} and C{/metrics}; everything else is a 404."""

    def __init__(self, role: str, check: Callable[[], Awaitable[bool]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._role = role
        self.putChild(b"health", _Health(check))
        self.putChild(b"metrics", _Metrics())  # type: ignore[no-untyped-call]

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return f"postal-{self._role} (pid: {os.getpid()}, host: {socket.gethostname()})".encode()

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        return super().getChild(path, request)  # type: ignore[no-any-return, no-untyped-call]


class _QuietSite(Site):
    """No access log: probes every few seconds would drown the role's log."""

    def log(self, request: http.Request) -> None:
        pass


def health_site(role: str, pool: TransactionPool, clock: IReactorTime | None = None) -> Site:
    """The site for C{role}'s health listener, checking the database through C{pool}."""
    site = _QuietSite(HealthResource(role, lambda: database_answers(pool, clock)))  # type: ignore[no-untyped-call]
    site.displayTracebacks = False
    site.noisy = False
    return site

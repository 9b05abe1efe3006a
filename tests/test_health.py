# -*- test-case-name: tests.test_health -*-
"""The health site: /health, /metrics and / over a real socket and through the resource."""

from __future__ import annotations

from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from postal.db.pool import SynchronousDatabasePool
from postal.health import CHECK_TIMEOUT, HealthResource, database_answers, health_site
from tests.dbhelpers import sqlite_engine


class _BrokenPool:
    """A database that refuses every transaction."""

    def run_in_transaction(self, name: str, fn: object, *args: object) -> Deferred[object]:
        return Deferred.fromCoroutine(self._fail())

    async def _fail(self) -> object:
        raise ConnectionRefusedError("no database here")


class _SilentPool:
    """A database that never answers."""

    def run_in_transaction(self, name: str, fn: object, *args: object) -> Deferred[object]:
        return Deferred()


class HealthOverSocketTests(TestCase):
    """The site served on a real listening port, fetched with treq."""

    def setUp(self) -> None:
        connections = HTTPConnectionPool(reactor, persistent=False)
        self.http = HTTPClient(Agent(reactor, pool=connections))
        self.addCleanup(connections.closeCachedConnections)

    def listen(self, pool: object) -> str:
        port = reactor.listenTCP(0, health_site("smtp", pool), interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}"

    async def test_health_ok_when_database_answers(self) -> None:
        """/health is 200 with body OK when SELECT 1 succeeds."""
        base = self.listen(SynchronousDatabasePool(sqlite_engine(self)))
        response = await self.http.get(base + "/health")
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), b"OK")

    async def test_health_503_when_database_fails(self) -> None:
        """/health is 503 when the database refuses, and the failure is logged."""
        base = self.listen(_BrokenPool())
        response = await self.http.get(base + "/health")
        self.assertEqual(response.code, 503)
        self.assertEqual(await response.content(), b"Database unavailable")
        self.assertEqual(len(self.flushLoggedErrors(ConnectionRefusedError)), 1)

    async def test_metrics_is_prometheus_text(self) -> None:
        """/metrics serves the Prometheus text format, including the database pool's metrics."""
        pool = SynchronousDatabasePool(sqlite_engine(self))
        base = self.listen(pool)
        await self.http.get(base + "/health")  # one named transaction, so the pool's histogram has a sample
        response = await self.http.get(base + "/metrics")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders("content-type")[0].startswith("text/plain; version="))
        body = (await response.content()).decode()
        self.assertIn("# TYPE postal_db_transaction_seconds histogram", body)
        self.assertIn('postal_db_transaction_seconds_count{name="health_check"}', body)

    async def test_root_names_the_role_and_others_are_404(self) -> None:
        """/ names the process's role; an unknown path is 404."""
        base = self.listen(_BrokenPool())
        root = await self.http.get(base + "/")
        self.assertTrue((await root.content()).startswith(b"postal-smtp (pid: "))
        missing = await self.http.get(base + "/nope")
        self.assertEqual(missing.code, 404)
        await missing.content()


class HealthTimeoutTests(SynchronousTestCase):
    """A database that hangs, on a fake clock."""

    def test_silent_database_is_unhealthy_after_timeout(self) -> None:
        """/health answers 503 once the check has waited CHECK_TIMEOUT seconds."""
        clock = Clock()
        stub = StubTreq(HealthResource("worker", lambda: database_answers(_SilentPool(), clock)))  # type: ignore[arg-type]
        response = stub.get("http://x/health")
        clock.advance(CHECK_TIMEOUT - 0.1)
        stub.flush()
        self.assertNoResult(response)
        clock.advance(0.1)
        stub.flush()
        self.assertEqual(self.successResultOf(response).code, 503)
        self.flushLoggedErrors()

# -*- test-case-name: tests.delivery.test_tap -*-
"""
Tests for the C{postal-worker} and C{postal-requeuer} tap modules and
plugins, and for the requeuer itself: the service trees they build, and
one requeue pass under a fake clock.
"""

from __future__ import annotations

import os

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from postal.config import default_config
from postal.db.delivery_store import SQLQueueMaintenance
from postal.db.pool import SynchronousDatabasePool
from postal.db.queue import claim_batch_txn, queue_stats_txn
from postal.delivery.requeuer import QUEUE_SIZE, Requeuer
from postal.delivery.wakeup import Notifier, PostgresQueueListener
from postal.delivery.worker import DeliveryWorker
from postal.db.webhook_requests import SQLWebhookQueue
from postal.lease import LeaseService
from postal.webhooks.sender import WebhookSender
from postal.tap import requeuer as requeuer_tap, worker as worker_tap
from tests.dbhelpers import sqlite_engine
from tests.delivery.helpers import make_account, queue_messages

NOW = 1_700_000_000.0


class TapTests(SynchronousTestCase):
    def test_plugins(self) -> None:
        """postal-worker and postal-requeuer are twistd plugins resolving to their tap modules."""
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        self.assertEqual(makers["postal-worker"].module, "postal.tap.worker")  # type: ignore[attr-defined]
        self.assertEqual(makers["postal-requeuer"].module, "postal.tap.requeuer")  # type: ignore[attr-defined]

    def test_worker_build(self) -> None:
        """The worker's tree holds the delivery worker; on PostgreSQL also the NOTIFY listener."""
        folder = os.path.abspath(self.mktemp())
        config = default_config(folder, worker={"concurrency": 7})
        tree = worker_tap.build(config, MemoryReactorClock(), SynchronousDatabasePool(sqlite_engine(self)))
        assert isinstance(tree, MultiService)
        worker = tree.getServiceNamed("delivery-worker")
        self.assertIsInstance(worker, DeliveryWorker)
        self.assertEqual(worker._concurrency, 7)  # type: ignore[attr-defined]
        pg = default_config(folder, database={"url": "postgresql+psycopg://u@h/db"})
        tree = worker_tap.build(pg, MemoryReactorClock(), SynchronousDatabasePool(sqlite_engine(self)))
        self.assertIsInstance(tree.getServiceNamed("queue-listener"), PostgresQueueListener)  # type: ignore[attr-defined]

    def test_worker_tree_sends_webhooks(self) -> None:
        """The worker's tree (build's, and the whole role's that makeService returns) holds the webhook sender."""
        folder = os.path.abspath(self.mktemp())
        config = default_config(folder, database={"url": f"sqlite:///{folder}/postal.sqlite"})
        tree = worker_tap.build(config, MemoryReactorClock(), SynchronousDatabasePool(sqlite_engine(self)))
        assert isinstance(tree, MultiService)
        sender = tree.getServiceNamed("webhook-sender")
        self.assertIsInstance(sender, WebhookSender)
        self.assertIsInstance(sender._queue, SQLWebhookQueue)  # type: ignore[attr-defined]
        self.assertTrue(os.path.exists(os.path.join(folder, "signing.key")))
        role = worker_tap.role_service(config, MemoryReactorClock())
        assert isinstance(role, MultiService)
        worker_tree = role.getServiceNamed("worker")
        self.assertIsInstance(worker_tree.getServiceNamed("webhook-sender"), WebhookSender)  # type: ignore[attr-defined]
        self.assertIsInstance(worker_tree.getServiceNamed("delivery-worker"), DeliveryWorker)  # type: ignore[attr-defined]

    def test_requeuer_build(self) -> None:
        """The requeuer role is a lease service named requeuer-lease."""
        service = requeuer_tap.build(default_config("/tmp"), MemoryReactorClock(),
                                     SynchronousDatabasePool(sqlite_engine(self)))
        self.assertIsInstance(service, LeaseService)
        self.assertEqual(service.name, "requeuer-lease")


class RequeuerTests(SynchronousTestCase):
    def test_returns_expired_leases_and_wakes(self) -> None:
        """A pass returns a dead worker's rows, wakes the workers and exports the queue size."""
        pool = SynchronousDatabasePool(sqlite_engine(self))
        account = make_account(pool)
        queue_messages(pool, account, ["a@one.test", "b@one.test"])
        pool.call("claim", claim_batch_txn, NOW, "dead-worker", 10.0, 10)
        woken: list[bool] = []
        notifier = Notifier()
        notifier.subscribe(lambda: woken.append(True))
        clock = Clock()
        clock.advance(NOW)
        requeuer = Requeuer(clock, SQLQueueMaintenance(pool), notifier, interval=1.0)
        requeuer.start()
        self.assertEqual(pool.call("s", queue_stats_txn, NOW).locked, 2)
        woken.clear()
        clock.advance(11)
        stats = pool.call("s", queue_stats_txn, NOW + 11)
        self.assertEqual((stats.locked, stats.ready), (0, 2))
        self.assertTrue(woken)
        self.assertEqual(QUEUE_SIZE._value.get(), 2)
        requeuer.stop()


class PostgresWakeupTests(TestCase):
    timeout = 30

    async def test_notify_after_commit_wakes_listener(self) -> None:
        """A transaction running notify_queue_txn wakes a PostgresQueueListener's notifier once it commits."""
        from twisted.internet import reactor

        from postal.db.queue import notify_queue_txn
        from tests.dbhelpers import POSTGRESQL_URL, postgresql_engine
        if not POSTGRESQL_URL:
            raise SkipTest("POSTAL_TEST_POSTGRESQL_URL is not set")
        engine = postgresql_engine(self)
        woken: Deferred[None] = Deferred()
        notifier = Notifier()
        notifier.subscribe(lambda: None if woken.called else woken.callback(None))
        listener = PostgresQueueListener(engine.url.render_as_string(hide_password=False), notifier, reactor)  # type: ignore[arg-type]
        listener.startService()
        self.addCleanup(listener.stopService)
        pool = SynchronousDatabasePool(engine)

        def poll() -> None:
            if not woken.called:
                pool.call("notify", notify_queue_txn)
                reactor.callLater(0.2, poll)  # type: ignore[attr-defined]

        poll()
        await woken
        # Let the listener thread leave its wait before the reactor shuts the thread pool.
        done: Deferred[None] = Deferred()
        reactor.callLater(0.6, done.callback, None)  # type: ignore[attr-defined]
        listener.stopService()
        await done

"""
Webhook sender benchmark: queue N MessageSent requests for a webhook on a
local receiver (a separate process), run the webhook sender with the real
reactor, treq and database pool, and time until every request is delivered.
Usage: python bench/webhooks.py [N] [DATABASE_URL]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

from postal.config import default_config
from postal.db import organizations, servers, webhooks
from postal.db.migrate import upgrade
from postal.db.pool import DatabasePool, SynchronousDatabasePool, make_engine
from postal.db.webhook_requests import SQLWebhookQueue
from postal.webhooks.service import build_webhook_sender

PORT = 5098


def _setup(url: str, count: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    pool = SynchronousDatabasePool(engine)
    pool.call("org", organizations.create_organization_txn, 1.0, "Bench", None, None)
    server = pool.call("server", servers.create_server_txn, 1.0, "bench", "Main", None)
    pool.call("webhook", webhooks.create_webhook_txn, 1.0, server.id, f"http://127.0.0.1:{PORT}/hook", None, True, [])

    def enqueue(conn, now):  # type: ignore[no-untyped-def]
        for i in range(count):
            webhooks.enqueue_webhook_event_txn(conn, now, server.id, "MessageSent", {
                "message": {"id": i, "token": "t", "direction": "outgoing"}, "status": "Sent",
                "details": "Message accepted", "output": "250 OK", "sent_with_ssl": False,
                "timestamp": now, "time": 0.1})

    pool.call("enqueue", enqueue, time.time())
    engine.dispose()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    folder = tempfile.mkdtemp(prefix="postal-bench-webhooks-")
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{folder}/postal.sqlite"
    _setup(url, count)
    receiver = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "webhook_receiver.py"),
                                 str(PORT)])
    time.sleep(1.0)
    config = default_config(folder, database={"url": url}, worker={"poll_interval": 0.2})
    pool = DatabasePool(make_engine(url), reactor, threads=4)
    sender = build_webhook_sender(config, reactor, SQLWebhookQueue(pool))
    started = time.perf_counter()

    async def run() -> None:
        pool.startService()
        sender.startService()
        while True:
            left = await pool.run_in_transaction("left", lambda conn: conn.exec_driver_sql(
                "SELECT count(*) FROM webhook_requests").scalar())
            if not left:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        elapsed = time.perf_counter() - started
        print(f"{count} webhooks delivered in {elapsed:.2f}s: {count / elapsed:.0f}/s")
        await sender.stopService()
        await pool.stopService()

    d = Deferred.fromCoroutine(run())
    d.addErrback(lambda f: print(f.getTraceback()))
    d.addBoth(lambda _: reactor.stop())
    try:
        reactor.run()
    finally:
        receiver.terminate()


if __name__ == "__main__":
    main()

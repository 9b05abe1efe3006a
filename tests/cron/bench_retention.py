"""
Retention on N old messages (5 KB raw, one delivery each): total time and
the longest single transaction.  Not a test; run it by hand:

    N=20000 python -m tests.cron.bench_retention            # SQLite in a temp folder
    N=20000 python -m tests.cron.bench_retention postgresql+psycopg://postgres@127.0.0.1:5433/postgres

With a PostgreSQL URL it works in a throwaway database made beside the one named.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from twisted.internet.task import Clock

from postal.cron.retention import ProcessMessageRetention
from postal.db import messages, schema as s
from postal.db.migrate import upgrade
from postal.db.pool import SynchronousDatabasePool, make_engine
from tests.cron.fixtures import DAY, NOW, Installation


class TimedPool(SynchronousDatabasePool):
    """Records the longest transaction and how many ran."""

    longest = 0.0
    count = 0

    def run_in_transaction(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = super().run_in_transaction(name, fn, *args, **kwargs)
        self.longest = max(self.longest, time.perf_counter() - started)
        self.count += 1
        return result


def bench(url: str, n: int) -> str:
    engine = make_engine(url)
    upgrade(engine)
    pool = TimedPool(engine)
    site = Installation(pool)
    raw = b"Subject: x\r\n\r\n" + b"y" * 5000
    with engine.begin() as conn:
        for start in range(0, n, 500):
            messages.store_transactions_txn(conn, NOW - 70 * DAY, [
                messages.NewTransaction(site.server.id, raw, [messages.NewMessage(
                    "outgoing", f"{i}@x.test", "a@b.test", site.server.id)])
                for i in range(start, min(n, start + 500))])
        ids = list(conn.execute(select(s.messages.c.id)).scalars())
        conn.execute(insert(s.deliveries), [
            dict(message_id=i, status="Sent", sent_with_ssl=False, timestamp=NOW) for i in ids])
    pool.longest, pool.count = 0.0, 0
    clock = Clock()
    clock.advance(NOW)
    started = time.perf_counter()
    outcome: list[Any] = []
    ProcessMessageRetention(pool, clock).run().addBoth(outcome.append)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return (f"{engine.dialect.name}: N={n}: {outcome[0]}; {elapsed:.2f}s, {pool.count} transactions, "
            f"longest {pool.longest * 1000:.0f} ms")


def main() -> None:
    n = int(os.environ.get("N", "20000"))
    if len(sys.argv) < 2:
        print(bench(f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite", n))
        return
    admin = create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
    name = "cron_bench_" + uuid.uuid4().hex[:8]
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        print(bench(sys.argv[1].rpartition("/")[0] + "/" + name, n))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()

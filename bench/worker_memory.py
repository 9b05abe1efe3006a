#!/usr/bin/env python
"""
Worker memory over a large backlog: fill the queue of a fresh installation
with N outgoing ~5 KB messages (straight into the database, in group commits
of --batch through C{store_transactions_txn}; no SMTP), then start one
C{twistd -n postal-worker} relaying to Postfix's smtp-sink and sample its
RSS (VmRSS) every --rss-every seconds and the queue size every --queue-every
seconds until the queue is empty.  Prints the samples as JSON lines and a
summary: RSS at start and after 10%, 25%, 50%, 75%, 100% of the messages,
peak, drain rate, worker CPU, load averages.

    /work/venv/bin/python bench/worker_memory.py --messages 100000
    /work/venv/bin/python bench/worker_memory.py --messages 20000 \\
        --database postgresql+psycopg://postgres@127.0.0.1:5433/postgres

The account is bench/mail with the verified domain example.com; its DKIM
status is set to OK, so the worker signs every message with the domain's
RSA-2048 key.  Near the end (when the queue would empty before the next
queue sample) the queue is sampled with every RSS sample, so the drain time
is not rounded up to --queue-every.  Extra arguments for twistd (e.g. a
profiler-friendly reactor) can be passed in C{BENCH_WORKER_TWISTD_ARGS}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from sqlalchemy import func, select, update

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from smtp_intake import TWISTD, cpu_seconds, drop_database, free_port, fresh_database, prepare, rss_kib  # noqa: E402

from postal.db import schema as s  # noqa: E402
from postal.db.messages import NewMessage, NewTransaction, store_transactions_txn  # noqa: E402
from postal.db.pool import SynchronousDatabasePool  # noqa: E402
from postal.keys import ensure_signing_key, generate_rsa_key_pem  # noqa: E402

MILESTONES = (0.10, 0.25, 0.50, 0.75, 1.00)


def message_bytes(i: int, size: int) -> bytes:
    head = (f"From: Sender <sender@example.com>\r\nTo: rcpt{i % 1000}@example.net\r\n"
            f"Subject: Backlog message {i}\r\nMessage-ID: <backlog-{i}@example.com>\r\n"
            f"Date: Fri, 04 Dec 2026 23:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode("ascii")
    line = (f"line of message {i} ".ljust(76, "x") + "\r\n").encode("ascii")
    return head + line * max(1, (size - len(head)) // len(line))


def fill(pool: SynchronousDatabasePool, count: int, size: int, batch: int) -> float:
    server_id, domain_id = pool.call("ids", lambda c: tuple(c.execute(
        select(s.domains.c.server_id, s.domains.c.id).where(s.domains.c.name == "example.com")).one()))
    # prepare() stores a placeholder DKIM key; give the domain a real one.
    pem = generate_rsa_key_pem(2048)
    pool.call("dkim-ok", lambda c: c.execute(update(s.domains).values(
        dkim_private_key=pem, dkim_status="OK", spf_status="OK")).rowcount)
    started = time.monotonic()
    for first in range(0, count, batch):
        transactions = [NewTransaction(server_id=server_id, raw=message_bytes(i, size), messages=[NewMessage(
            scope="outgoing", rcpt_to=f"rcpt{i % 1000}@example.net", mail_from="sender@example.com",
            server_id=server_id, subject=f"Backlog message {i}", message_id=f"backlog-{i}@example.com",
            domain_id=domain_id,
        )]) for i in range(first, min(count, first + batch))]
        pool.call("fill", store_transactions_txn, time.time(), transactions)
    return time.monotonic() - started


def queued(pool: SynchronousDatabasePool) -> int:
    return int(pool.call("queued", lambda c: c.execute(
        select(func.count()).select_from(s.queued_messages)).scalar_one()))


def sent(pool: SynchronousDatabasePool) -> int:
    return int(pool.call("sent", lambda c: c.execute(
        select(func.count()).select_from(s.messages).where(s.messages.c.status == "Sent")).scalar_one()))


def write_config(folder: str, url: str, sink_port: int, args: argparse.Namespace) -> str:
    path = os.path.join(folder, "postal.yml")
    with open(path, "w") as f:
        f.write(
            f"version: 2\npostal:\n  smtp_hostname: bench.postal.test\n"
            f"  smtp_relays: ['smtp://127.0.0.1:{sink_port}?ssl_mode=None']\n"
            f"  signing_key_path: {folder}/signing.key\n"
            f"database:\n  url: {url}\n"
            f"worker:\n  health_port: 0\n  concurrency: {args.concurrency}\n"
            f"  per_destination_concurrency: {args.per_destination}\n  poll_interval: {args.poll}\n"
        )
    return path


def start_worker(folder: str, config: str) -> subprocess.Popen[bytes]:
    extra = os.environ.get("BENCH_WORKER_TWISTD_ARGS", "").split()
    log = open(os.path.join(folder, "worker.out"), "ab")
    return subprocess.Popen([TWISTD, "-n", "--pidfile=", *extra, "--logfile", os.path.join(folder, "worker.log"),
                             "postal-worker", "--config", config], cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def drain(pool: SynchronousDatabasePool, worker: subprocess.Popen[bytes], total: int,
          args: argparse.Namespace) -> dict[str, object]:
    """Sample until the queue is empty; returns the summary."""
    started = time.monotonic()
    rss: list[tuple[float, int]] = []
    queue: list[tuple[float, int]] = []
    loads: list[str] = []
    next_queue = 0.0
    remaining = total
    progress = (0.0, total)
    while remaining > 0:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        elapsed = time.monotonic() - started
        rss.append((round(elapsed, 1), rss_kib(worker.pid)))
        if elapsed >= next_queue:
            remaining = queued(pool)
            queue.append((round(elapsed, 1), remaining))
            loads.append(loadavg())
            print(json.dumps({"t": round(elapsed, 1), "rss_mib": round(rss[-1][1] / 1024, 1),
                              "queued": remaining, "load": loads[-1]}), flush=True)
            drop = progress[1] - remaining
            next_queue = elapsed + (args.rss_every if remaining <= drop else args.queue_every)
            if remaining < progress[1]:
                progress = (elapsed, remaining)
            elif elapsed - progress[0] > args.stall:
                raise SystemExit(f"no progress for {args.stall} s; see the worker log")
        if remaining > 0:
            time.sleep(args.rss_every)
    finished = time.monotonic() - started
    return summary(rss, queue, loads, total, finished, sent(pool))


def rss_at(rss: list[tuple[float, int]], when: float) -> float:
    """The first RSS sample taken at or after C{when}, in MiB."""
    return round(next((kib for t, kib in rss if t >= when), rss[-1][1]) / 1024, 1)


def summary(rss: list[tuple[float, int]], queue: list[tuple[float, int]], loads: list[str],
            total: int, finished: float, sent_count: int) -> dict[str, object]:
    at = {}
    for fraction in MILESTONES:
        done = int(total * fraction)
        when = next((t for t, left in queue if total - left >= done), finished)
        at[str(done)] = {"t": when, "rss_mib": rss_at(rss, when)}
    first_progress = next((t for t, left in queue if left < total), 0.0)
    settled = [kib for t, kib in rss if t >= at[str(int(total * MILESTONES[0]))]["t"]] or [rss[-1][1]]
    return {
        "messages": total, "sent": sent_count, "drain_s": round(finished, 1),
        "drain_msg_per_s": round(total / finished, 1),
        "rss_mib_start": rss_at(rss, first_progress), "rss_mib_at_messages": at,
        "rss_mib_peak": round(max(kib for _, kib in rss) / 1024, 1),
        "rss_mib_range_after_first_10pct": [round(min(settled) / 1024, 1), round(max(settled) / 1024, 1)],
        "first_progress_s": first_progress, "load_first": loads[0], "load_last": loads[-1],
        "rss_samples": len(rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--size", type=int, default=5120)
    parser.add_argument("--batch", type=int, default=1000, help="messages per fill transaction")
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: SQLite in a temp folder)")
    parser.add_argument("--sink-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--per-destination", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--rss-every", type=float, default=2.0)
    parser.add_argument("--queue-every", type=float, default=10.0)
    parser.add_argument("--stall", type=float, default=120.0, help="give up after this long without progress")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (worker log, SQLite file)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="postal-bench-worker-memory-")
    url = fresh_database(folder, args.database)
    sink_port = args.sink_port or free_port()
    pool = prepare(folder, url, 0)
    ensure_signing_key(os.path.join(folder, "signing.key"))
    config = write_config(folder, url, sink_port, args)
    fill_s = fill(pool, args.messages, args.size, args.batch)
    print(json.dumps({"filled": queued(pool), "fill_s": round(fill_s, 1), "folder": folder,
                      "load": loadavg()}), flush=True)
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{sink_port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = start_worker(folder, config)
    try:
        result = drain(pool, worker, args.messages, args)
        result["worker_cpu_ms_per_msg"] = round(cpu_seconds(worker.pid) * 1000 / args.messages, 3)
        result["database"] = url.split(":")[0]
        print(json.dumps(result), flush=True)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        sink.terminate()
        sink.wait(10)
        pool.engine.dispose()
        drop_database(url, args.database)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""
End-to-end benchmark: smtp-source -> postal-smtp -> queue -> postal-worker
(DKIM RSA-2048) -> Postfix's smtp-sink, with the smtp, worker and requeuer
roles as separate twistd processes on one database.  Reports messages/s
from the first byte smtp-source sends until the last message is recorded
Sent, and the worker's CPU time and RSS.

    /work/venv/bin/python bench/e2e.py --messages 20000
    /work/venv/bin/python bench/e2e.py --database postgresql+psycopg://postgres@127.0.0.1:5433/postgres --workers 2
    /work/venv/bin/python bench/e2e.py --idle-latency 50     # 250-to-sink latency, one message at a time

The sink runs as C{smtp-sink -u nobody 127.0.0.1:PORT 1000}; the worker relays
every message to it (C{postal.smtp_relays}), so no DNS is involved.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

from sqlalchemy import func, select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from smtp_intake import (  # noqa: E402
    TWISTD, RSSSampler, cpu_seconds, free_port, fresh_database, prepare, rss_kib, run_source,
)

from postal.db import schema as s  # noqa: E402
from postal.db.pool import SynchronousDatabasePool  # noqa: E402
from postal.keys import ensure_signing_key  # noqa: E402


def write_config(folder: str, url: str, smtp_port: int, sink_port: int, args: argparse.Namespace) -> str:
    path = os.path.join(folder, "postal.yml")
    with open(path, "w") as f:
        f.write(
            f"version: 2\npostal:\n  smtp_hostname: bench.postal.test\n"
            f"  smtp_relays: ['smtp://127.0.0.1:{sink_port}?ssl_mode=None']\n"
            f"  signing_key_path: {folder}/signing.key\n"
            f"database:\n  url: {url}\n"
            f"smtp_server:\n  default_port: {smtp_port}\n  default_bind_address: 127.0.0.1\n"
            f"  health_port: 0\n  max_connections_per_ip: 1000\n"
            f"worker:\n  health_port: 0\n  concurrency: {args.concurrency}\n"
            f"  per_destination_concurrency: {args.per_destination}\n  poll_interval: {args.poll}\n"
            f"requeuer:\n  health_port: 0\n"
        )
    return path


def start_role(folder: str, role: str, config: str, tag: str = "") -> subprocess.Popen[bytes]:
    name = role + tag
    log = open(os.path.join(folder, f"{name}.out"), "ab")
    extra = os.environ.get("BENCH_WORKER_TWISTD_ARGS", "").split() if role == "worker" else []
    return subprocess.Popen([TWISTD, "-n", "--pidfile=", *extra, "--logfile", os.path.join(folder, f"{name}.log"),
                             f"postal-{role}", "--config", config], cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def wait_for_port(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("postal-smtp did not start")


def sent(pool: SynchronousDatabasePool) -> int:
    return int(pool.call("sent", lambda c: c.execute(
        select(func.count()).select_from(s.messages).where(s.messages.c.status == "Sent")).scalar_one()))


def wait_for_sent(pool: SynchronousDatabasePool, target: int, timeout: float = 600.0, step: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sent(pool) >= target:
            return time.monotonic()
        time.sleep(step)
    raise SystemExit(f"only {sent(pool)} of {target} messages were sent")


def idle_latency(pool: SynchronousDatabasePool, port: int, count: int) -> list[float]:
    """Seconds from the 250 after DATA to the message recorded Sent (the sink has it by then)."""
    latencies = []
    with smtplib.SMTP("127.0.0.1", port) as client:
        for i in range(count):
            before = sent(pool)
            client.sendmail("sender@example.com", ["rcpt@example.net"],
                            f"From: sender@example.com\r\nTo: rcpt@example.net\r\nSubject: {i}\r\n\r\nhi\r\n")
            accepted = time.monotonic()
            latencies.append(wait_for_sent(pool, before + 1, 30, 0.002) - accepted)
            time.sleep(0.2)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5120)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--per-destination", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--idle-latency", type=int, default=0)
    parser.add_argument("--drain", action="store_true",
                        help="queue the messages with the worker stopped, then time the worker draining them")
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="postal-bench-e2e-")
    smtp_port, sink_port = free_port(), free_port()
    url = fresh_database(folder, args.database)
    pool = prepare(folder, url, smtp_port)
    ensure_signing_key(os.path.join(folder, "signing.key"))
    config = write_config(folder, url, smtp_port, sink_port, args)
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    roles = [start_role(folder, "smtp", config), start_role(folder, "requeuer", config)]
    workers = [start_role(folder, "worker", config, f"-{i}") for i in range(args.workers)]
    roles += workers
    try:
        wait_for_port(smtp_port)
        run_source(smtp_port, args.warmup, args.sessions, args.size, reuse=True)
        wait_for_sent(pool, args.warmup)
        if args.idle_latency:
            lat = sorted(idle_latency(pool, smtp_port, args.idle_latency))
            print(json.dumps({"idle_latency_ms_median": round(lat[len(lat) // 2] * 1000, 1),
                              "idle_latency_ms_max": round(lat[-1] * 1000, 1), "samples": len(lat)}), flush=True)
            return
        base = sent(pool)
        if args.drain:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
            run_source(smtp_port, args.messages, args.sessions, args.size, reuse=True)
            workers[:] = [start_role(folder, "worker", config, f"-drain-{i}") for i in range(args.workers)]
            roles += workers
        samplers = [RSSSampler(w.pid) for w in workers]
        for sampler in samplers:
            sampler.start()
        cpu_before = [cpu_seconds(w.pid) for w in workers]
        started = time.monotonic()
        intake_rate = 0.0 if args.drain else run_source(smtp_port, args.messages, args.sessions, args.size, reuse=True)
        finished = wait_for_sent(pool, base + args.messages)
        for sampler in samplers:
            sampler.stopped.set()
        rss = [kib for sampler in samplers for _, kib in sampler.samples] or [rss_kib(workers[0].pid)]
        cpu = sum(cpu_seconds(w.pid) - b for w, b in zip(workers, cpu_before))
        print(json.dumps({
            "database": url.split(":")[0], "workers": args.workers, "mode": "drain" if args.drain else "stream", "messages": args.messages,
            "end_to_end_msg_per_s": round(args.messages / (finished - started), 1),
            "intake_msg_per_s": round(intake_rate, 1),
            "worker_cpu_ms_per_msg": round(cpu * 1000 / args.messages, 3),
            "worker_rss_mib_max": round(max(rss) / 1024, 1), "worker_rss_mib_last": round(rss[-1] / 1024, 1),
        }), flush=True)
    finally:
        for process in roles:
            process.send_signal(signal.SIGTERM)
        for process in roles:
            process.wait(60)
        sink.terminate()
        sink.wait(10)
        pool.engine.dispose()


if __name__ == "__main__":
    main()

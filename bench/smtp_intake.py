#!/usr/bin/env python
"""
SMTP intake benchmark: postal-smtp (the real twistd plugin) on a fresh
SQLite or PostgreSQL database, loaded by Postfix's smtp-source with 5 KB
messages, new connections and reused ones.  Reports msg/s (until every
message got its 250, i.e. was committed) and the smtp process's RSS over time.

    /work/venv/bin/python bench/smtp_intake.py --messages 20000
    /work/venv/bin/python bench/smtp_intake.py --database postgresql+psycopg://postgres@127.0.0.1:5433/postgres

The account: organization bench, server bench/mail, verified domain
example.com, an SMTP-IP credential for 127.0.0.1 (so smtp-source relays
without AUTH), From sender@example.com to rcpt@example.net.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from sqlalchemy import create_engine, func, select, text

from postal.db import schema as s
from postal.db.credentials import create_credential_txn
from postal.db.domains import create_domain_txn
from postal.db.migrate import upgrade
from postal.db.organizations import create_organization_txn
from postal.db.pool import SynchronousDatabasePool, make_engine
from postal.db.servers import create_server_txn

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database(folder: str, base_url: str | None) -> str:
    if not base_url:
        return f"sqlite:///{folder}/postal.sqlite"
    name = "postal_bench_smtp_" + uuid.uuid4().hex[:8]
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base_url.rpartition("/")[0] + "/" + name


def drop_database(url: str, base_url: str | None) -> None:
    if not base_url:
        return
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))
    admin.dispose()


def prepare(folder: str, url: str, port: int) -> SynchronousDatabasePool:
    engine = make_engine(url)
    upgrade(engine)
    pool = SynchronousDatabasePool(engine)
    now = time.time()
    org = pool.call("org", create_organization_txn, now, "Bench", "bench", None)
    server = pool.call("server", create_server_txn, now, "bench", "Mail", "mail")
    pool.call("domain", create_domain_txn, now, org.id, server.id, "example.com", True, "unused")
    pool.call("cred", create_credential_txn, now, server.id, "SMTP-IP", "bench", "127.0.0.1/32")
    with open(os.path.join(folder, "postal.yml"), "w") as f:
        f.write(f"version: 2\npostal:\n  smtp_hostname: bench.postal.test\ndatabase:\n  url: {url}\n"
                f"smtp_server:\n  default_port: {port}\n  default_bind_address: 127.0.0.1\n"
                f"  health_port: 0\n  max_connections_per_ip: 1000\n")
    return pool


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RSSSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stopped.wait(self.interval):
            try:
                self.samples.append((round(time.monotonic() - start, 1), rss_kib(self.pid)))
            except OSError:
                return


def start_server(folder: str, port: int) -> subprocess.Popen[bytes]:
    log = open(os.path.join(folder, "smtp.log"), "ab")
    launcher = [sys.executable, os.environ["BENCH_LAUNCHER"]] if os.environ.get("BENCH_LAUNCHER") else [TWISTD]
    extra = os.environ.get("BENCH_TWISTD_ARGS", "").split()
    process = subprocess.Popen([*launcher, "-n", "--pidfile=", *extra, "--logfile", os.path.join(folder, "twistd.log"),
                                "postal-smtp", "--config", os.path.join(folder, "postal.yml")],
                               cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise SystemExit("postal-smtp did not start; see " + folder)


def run_source(port: int, messages: int, sessions: int, size: int, reuse: bool) -> float:
    command = ["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
               "-f", "sender@example.com", "-t", "rcpt@example.net", f"127.0.0.1:{port}"]
    if reuse:
        command.insert(1, "-d")
    started = time.monotonic()
    subprocess.run(command, check=True)
    return messages / (time.monotonic() - started)


def stored(pool: SynchronousDatabasePool) -> int:
    return int(pool.call("count", lambda c: c.execute(select(func.count()).select_from(s.messages)).scalar_one()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5120)
    parser.add_argument("--modes", default="newconn,reuse")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and database")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="postal-bench-smtp-")
    port = free_port()
    url = fresh_database(folder, args.database)
    pool = prepare(folder, url, port)
    process = start_server(folder, port)
    results = []
    try:
        run_source(port, args.warmup, args.sessions, args.size, reuse=True)
        for mode in args.modes.split(","):
            before = stored(pool)
            sampler = RSSSampler(process.pid)
            sampler.start()
            cpu_before = cpu_seconds(process.pid)
            rate = run_source(port, args.messages, args.sessions, args.size, reuse=(mode == "reuse"))
            cpu = cpu_seconds(process.pid) - cpu_before
            sampler.stopped.set()
            sampler.join()
            count = stored(pool) - before
            rss = [kib for _, kib in sampler.samples] or [rss_kib(process.pid)]
            results.append({
                "database": url.split(":")[0], "mode": mode, "messages": args.messages, "stored": count,
                "msg_per_s": round(rate, 1),
                "smtp_cpu_ms_per_msg": round(cpu * 1000 / args.messages, 3), "rss_mib_first": round(rss[0] / 1024, 1),
                "rss_mib_max": round(max(rss) / 1024, 1), "rss_mib_last": round(rss[-1] / 1024, 1),
                "rss_mib_quartiles": [round(rss[len(rss) * q // 4] / 1024, 1) for q in range(4)],
            })
            print(json.dumps(results[-1]), flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        pool.engine.dispose()
        if args.keep:
            print(f"kept {folder} and {url}", file=sys.stderr)
        else:
            drop_database(url, args.database)
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

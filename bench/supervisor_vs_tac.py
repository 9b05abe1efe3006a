#!/usr/bin/env python
"""
End to end on one host: the same load through `twistd -ny postal.tac` (every
role in one process) and through the supervisor (`postal start`: smtp and
two workers as separate processes), in the same run, on fresh databases.

Each run: smtp-source sends N 5 KB messages over reused connections to the
smtp role, which queues them; the workers deliver them through
`postal.smtp_relays` to Postfix's smtp-sink.  The figure is N divided by the
time from the first message sent until the queue is empty (every message
delivered and recorded), plus the intake rate alone.

    /work/venv/bin/python bench/supervisor_vs_tac.py --messages 5000
    /work/venv/bin/python bench/supervisor_vs_tac.py --database postgresql+psycopg://postgres@127.0.0.1:5433/postgres

Needs the smtp and worker roles installed (twistd plugins postal-smtp and
postal-worker); it says so and stops otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from sqlalchemy import func, select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtp_intake import fresh_database, prepare, run_source  # noqa: E402  (bench/ sibling)

from postal.db import schema as s  # noqa: E402
from postal.db.pool import SynchronousDatabasePool  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def write_config(folder: str, url: str, smtp_port: int, sink_port: int) -> str:
    path = os.path.join(folder, "postal.yml")
    ports = {name: free_port() for name in ("worker", "smtp", "cron", "requeuer", "fast")}
    with open(path, "w") as f:
        f.write(
            f"version: 2\npostal:\n  smtp_hostname: bench.postal.test\n"
            f"  smtp_relays: ['smtp://127.0.0.1:{sink_port}?ssl_mode=None']\n"
            f"database:\n  url: {url}\n"
            f"smtp_server:\n  default_port: {smtp_port}\n  default_bind_address: 127.0.0.1\n"
            f"  health_port: {ports['smtp']}\n  max_connections_per_ip: 1000\n"
            # As bench/e2e.py and bench/peers.d: SQLite has no cross-process wake-up, so
            # separate workers poll every 50 ms (postal.tac wakes its worker in-process).
            f"worker:\n  health_port: {ports['worker']}\n  poll_interval: 0.05\n"
            f"  per_destination_concurrency: 20\n"
            f"cron:\n  health_port: {ports['cron']}\nrequeuer:\n  health_port: {ports['requeuer']}\n"
            f"fast:\n  health_port: {ports['fast']}\n"
            f"web_server:\n  default_port: {free_port()}\n"
            f"processes:\n  web: 0\n  smtp: 1\n  worker: 2\n  cron: 0\n  requeuer: 1\n  fast: 0\n")
    return path


def queued(pool: SynchronousDatabasePool) -> int:
    return int(pool.call("queued", lambda c: c.execute(
        select(func.count()).select_from(s.queued_messages)).scalar_one()))


def start(mode: str, folder: str, config: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, POSTAL_CONFIG_FILE_PATH=config)
    log = open(os.path.join(folder, f"{mode}.out"), "ab")
    if mode == "tac":
        command = [os.path.join(BIN, "twistd"), "-n", "--pidfile=", "-y", os.path.join(HERE, "postal.tac")]
    else:
        command = [os.path.join(BIN, "postal"), "start", "--config", config]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def one_run(mode: str, args: argparse.Namespace, sink_port: int) -> dict[str, object]:
    folder = tempfile.mkdtemp(prefix=f"pb-{mode}-")
    smtp_port = free_port()
    url = fresh_database(folder, args.database)
    pool = prepare(folder, url, smtp_port)
    config = write_config(folder, url, smtp_port, sink_port)
    process = start(mode, folder, config)
    try:
        wait_port(smtp_port)
        run_source(smtp_port, args.warmup, args.sessions, args.size, reuse=True)
        while queued(pool):
            time.sleep(0.1)
        began = time.monotonic()
        intake = run_source(smtp_port, args.messages, args.sessions, args.size, reuse=True)
        deadline = began + args.timeout
        while queued(pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = queued(pool)
        elapsed = time.monotonic() - began
        return {"mode": mode, "database": url.split(":")[0], "messages": args.messages,
                "undelivered": left, "intake_msg_per_s": round(intake, 1),
                "end_to_end_msg_per_s": round((args.messages - left) / elapsed, 1), "folder": folder}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(90)
        pool.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5120)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--modes", default="tac,supervisor")
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()
    from postal.tap.supervisor import available_roles

    missing = {"smtp", "worker"} - set(available_roles())
    if missing:
        raise SystemExit(f"needs the {', '.join(sorted(missing))} role(s) installed (twistd plugin postal-<role>)")
    sink_port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{sink_port}", "1000"])
    try:
        wait_port(sink_port)
        for mode in args.modes.split(","):
            print(json.dumps(one_run(mode, args, sink_port)), flush=True)
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    main()

"""
Running the real C{twistd -n postal-smtp} as a subprocess against a fresh
SQLite database with an account (for socket, crash and benchmark tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import attrs

from postal.db.migrate import upgrade
from postal.db.pool import SynchronousDatabasePool, make_engine
from tests.smtp.fixtures import HOSTNAME, RETURN_PATH_DOMAIN, ROUTE_DOMAIN, Account, make_account
from tests.realworld import free_port

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")




@attrs.define
class SMTPServerProcess:
    """A postal-smtp process; C{start()} waits until it accepts connections."""

    folder: str
    port: int
    account: Account
    pool: SynchronousDatabasePool
    process: subprocess.Popen[bytes] | None = None
    twistd_args: list[str] = attrs.field(factory=list)

    @property
    def config_path(self) -> str:
        return os.path.join(self.folder, "postal.yml")

    def start(self, timeout: float = 30.0) -> None:
        log = open(os.path.join(self.folder, "smtp.log"), "ab")
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", *self.twistd_args, "postal-smtp", "--config", self.config_path],
            cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postal-smtp exited with {self.process.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                # Polling a port the child is about to open: a wait on a
                # condition we cannot be told about, not a timing guess.
                time.sleep(0.05)
        raise RuntimeError("postal-smtp did not start listening: " + self.log())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        with open(os.path.join(self.folder, "smtp.log"), "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")


def write_config(folder: str, port: int, extra: str = "", database_url: str | None = None) -> str:
    path = os.path.join(folder, "postal.yml")
    db = f"database:\n  url: {database_url}\n" if database_url else ""
    with open(path, "w") as f:
        f.write(f"""version: 2
postal:
  smtp_hostname: {HOSTNAME}
{db}dns:
  return_path_domain: {RETURN_PATH_DOMAIN}
  route_domain: {ROUTE_DOMAIN}
logging:
  directory: {folder}/log
smtp_server:
  default_port: {port}
  default_bind_address: 127.0.0.1
  health_port: 0
{extra}""")
    return path


def prepare_server(case: Any, extra: str = "", ip_network: str | None = "127.0.0.1/32") -> SMTPServerProcess:
    """A migrated database with an account and a config; not started yet."""
    folder = tempfile.mkdtemp(prefix="postal-smtp-")
    case.addCleanup(shutil.rmtree, folder, True)  # runs last: after the stop below
    port = free_port()
    write_config(folder, port, extra)
    engine = make_engine(f"sqlite:///{folder}/postal.sqlite")
    upgrade(engine)
    pool = SynchronousDatabasePool(engine)
    account = make_account(pool, ip_network=ip_network)
    server = SMTPServerProcess(folder=folder, port=port, account=account, pool=pool)
    case.addCleanup(engine.dispose)
    case.addCleanup(server.stop)
    return server

# -*- test-case-name: tests.delivery.test_crash -*-
"""
The crash test: postal-smtp, postal-worker and postal-requeuer as separate
twistd processes on one SQLite database; messages submitted over SMTP; the
worker killed with SIGKILL while delivering and another started.  Every
message must reach the sink at least once; duplicates are counted and
reported (at-least-once allows them, only for messages in flight at the
kill).
"""

from __future__ import annotations

import os
import signal
import smtplib
import sys
import tempfile
from typing import Any

from sqlalchemy import func, select
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from postal.db import schema as s
from postal.db.credentials import create_credential_txn
from postal.db.domains import create_domain_txn
from postal.db.migrate import upgrade
from postal.db.organizations import create_organization_txn
from postal.db.pool import SynchronousDatabasePool, make_engine
from postal.db.servers import create_server_txn
from postal.keys import ensure_signing_key
from tests.delivery.scripted import Script, ScriptedSMTPFactory
from tests.realworld import ProcessOutput, free_port, listening, wait_until

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
MESSAGES = 300


class CrashTests(TestCase):
    timeout = 300

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="postal-crash-")
        url = f"sqlite:///{self.folder}/postal.sqlite"
        engine = make_engine(url)
        upgrade(engine)
        self.addCleanup(engine.dispose)
        self.pool = SynchronousDatabasePool(engine)
        now = reactor.seconds()  # type: ignore[attr-defined]
        org = self.pool.call("org", create_organization_txn, now, "Crash", "crash", None)
        server = self.pool.call("server", create_server_txn, now, "crash", "Mail", "mail")
        self.pool.call("domain", create_domain_txn, now, org.id, server.id, "example.com", True, "unused")
        self.pool.call("cred", create_credential_txn, now, server.id, "SMTP-IP", "t", "127.0.0.1/32")
        ensure_signing_key(os.path.join(self.folder, "signing.key"))
        self.script = Script()
        port = reactor.listenTCP(0, ScriptedSMTPFactory(self.script), interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
        self.addCleanup(port.stopListening)
        self.smtp_port = free_port()
        self.config = os.path.join(self.folder, "postal.yml")
        sink_port = port.getHost().port  # type: ignore[attr-defined]
        with open(self.config, "w") as f:
            f.write(
                f"version: 2\npostal:\n  smtp_relays: ['smtp://127.0.0.1:{sink_port}?ssl_mode=None']\n"
                f"  signing_key_path: {self.folder}/signing.key\n"
                f"database:\n  url: {url}\n"
                f"smtp_server:\n  default_port: {self.smtp_port}\n  default_bind_address: 127.0.0.1\n"
                f"  health_port: 0\n"
                f"worker:\n  health_port: 0\n  concurrency: 20\n  per_destination_concurrency: 2\n"
                f"  poll_interval: 0.1\n  lease_seconds: 3\n"
                f"requeuer:\n  health_port: 0\n  interval: 0.5\n")

    def start(self, role: str, name: str) -> Any:
        protocol = ProcessOutput()
        transport = reactor.spawnProcess(  # type: ignore[attr-defined]
            protocol, TWISTD, [TWISTD, "-n", "--pidfile=", "--logfile", os.path.join(self.folder, f"{name}.log"),
                               f"postal-{role}", "--config", self.config],
            env=dict(os.environ), path=self.folder)

        def stop() -> Deferred[None]:
            if transport.pid is not None:
                transport.signalProcess("TERM")
            return protocol.ended

        self.addCleanup(stop)
        return transport, protocol

    def submit(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port) as client:
            for i in range(MESSAGES):
                client.sendmail("sender@example.com", ["rcpt@dest.test"],
                                f"From: sender@example.com\r\nTo: rcpt@dest.test\r\nSubject: crash-{i}\r\n\r\n"
                                f"message {i}\r\n")

    def received_subjects(self) -> list[str]:
        subjects = []
        for _, _, data in self.script.messages:
            for line in data.split(b"\r\n"):
                if line.startswith(b"Subject: crash-"):
                    subjects.append(line[9:].decode())
        return subjects

    def sent_count(self) -> int:
        return int(self.pool.call("sent", lambda c: c.execute(select(func.count()).select_from(s.messages)
                                  .where(s.messages.c.status == "Sent")).scalar_one()))

    async def test_kill_worker_mid_stream(self) -> None:
        """After SIGKILL of the worker mid-stream and a new worker, every message arrives at least once."""
        self.start("smtp", "smtp")
        self.start("requeuer", "requeuer")
        first, first_protocol = self.start("worker", "worker-1")
        await wait_until(lambda: listening(self.smtp_port))
        submitting = deferToThread(self.submit)
        await wait_until(lambda: len(self.script.messages) >= MESSAGES // 4, timeout=120, step=0.02)
        first.signalProcess(signal.SIGKILL)
        await first_protocol.ended
        killed_at = len(self.script.messages)
        await submitting
        self.start("worker", "worker-2")
        await wait_until(lambda: len(set(self.received_subjects())) >= MESSAGES and self.sent_count() >= MESSAGES,
                         timeout=120)
        subjects = self.received_subjects()
        duplicates = len(subjects) - len(set(subjects))
        self.assertEqual(set(subjects), {f"crash-{i}" for i in range(MESSAGES)})
        queued = self.pool.call("q", lambda c: c.execute(select(func.count()).select_from(s.queued_messages))
                                .scalar_one())
        self.assertEqual(queued, 0)
        self.assertLessEqual(duplicates, 20, "only messages in flight at the kill may be sent twice")
        print(f"\ncrash test: {MESSAGES} messages, killed after {killed_at} received, "
              f"{len(subjects)} deliveries, {duplicates} duplicates")

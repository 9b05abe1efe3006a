# -*- test-case-name: tests.smtp.test_durability -*-
"""
Durable before 250: kill the real server process with SIGKILL in the middle
of a stream of concurrent submissions, restart it, and find every message
that got 250 stored intact (raw message, message row, queue row).
"""

from __future__ import annotations

import smtplib
import threading

from sqlalchemy import select
from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from tests.smtp.server import prepare_server

CLIENTS = 4
KILL_AFTER = 120


def body(client: int, n: int) -> bytes:
    return (f"From: a@example.com\r\nSubject: durable {client}-{n}\r\n\r\n".encode()
            + f"payload {client}-{n}\r\n".encode() * 40)


class SubmitterThread(threading.Thread):
    """Submits messages over one reused connection until the server goes away."""

    def __init__(self, client: int, port: int, acked: list[tuple[int, int]], enough: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.port, self.acked, self.enough = client, port, acked, enough

    def run(self) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
                for n in range(100_000):
                    smtp.sendmail("a@example.com", ["b@gmail.test"], body(self.client, n))
                    self.acked.append((self.client, n))  # only after the 250
                    if len(self.acked) >= KILL_AFTER:
                        self.enough.set()
        except (smtplib.SMTPException, OSError):
            return
        finally:
            self.enough.set()


class KillTests(SynchronousTestCase):
    def test_every_acknowledged_message_survives_sigkill(self) -> None:
        """Messages acknowledged with 250 before a SIGKILL are all stored intact after restart."""
        server = prepare_server(self, ip_network="127.0.0.1/32")
        server.start()
        acked: list[tuple[int, int]] = []
        enough = threading.Event()
        threads = [SubmitterThread(c, server.port, acked, enough) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        self.assertTrue(enough.wait(120), "submissions did not start")
        server.kill()
        for thread in threads:
            thread.join(30)
        confirmed = list(acked)
        self.assertGreaterEqual(len(confirmed), KILL_AFTER)

        server.start()  # recovery: the database opens and the server serves again
        stored = server.pool.call("stored", _stored_by_subject)
        missing = [key for key in confirmed if f"durable {key[0]}-{key[1]}" not in stored]
        self.assertEqual(missing, [])
        for client, n in confirmed:
            raw, queued = stored[f"durable {client}-{n}"]
            self.assertTrue(raw.endswith(body(client, n)))
            self.assertTrue(queued)
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            self.assertEqual(smtp.sendmail("a@example.com", ["b@gmail.test"], body(9, 9)), {})


def _stored_by_subject(conn: object) -> dict[str, tuple[bytes, bool]]:
    query = select(s.messages.c.subject, s.raw_messages.c.data, s.queued_messages.c.id).select_from(
        s.messages.join(s.raw_messages, s.raw_messages.c.id == s.messages.c.raw_message_id)
        .outerjoin(s.queued_messages, s.queued_messages.c.message_id == s.messages.c.id))
    return {row[0]: (bytes(row[1]), row[2] is not None) for row in conn.execute(query)}  # type: ignore[attr-defined]

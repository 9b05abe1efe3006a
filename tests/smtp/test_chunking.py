# -*- test-case-name: tests.smtp.test_chunking -*-
"""CHUNKING: BDAT chunks, pipelined, with exact replies."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from postal.smtp.chunking import parse_bdat
from tests.smtp.fixtures import count, messages, raw
from tests.smtp.test_session import SessionCase

HEADERS = b"From: a@example.com\r\nSubject: chunks\r\n\r\n"


class ParseTests(SynchronousTestCase):
    def test_parse(self) -> None:
        """BDAT takes a size and an optional LAST."""
        self.assertEqual(parse_bdat("10"), (10, False))
        self.assertEqual(parse_bdat("0 last"), (0, True))
        self.assertIsNone(parse_bdat("x"))
        self.assertIsNone(parse_bdat("10 FIRST"))


class BDATTests(SessionCase):
    def test_chunks_pipelined(self) -> None:
        """Two pipelined chunks (the last one LAST) are stored as one message, byte for byte."""
        self.auth_plain()
        body = b".starts with a dot\r\nno unstuffing\r\n"
        self.transport.clear()
        self.protocol.dataReceived(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@gmail.test>\r\n"
            + f"BDAT {len(HEADERS)}\r\n".encode() + HEADERS
            + f"BDAT {len(body)} LAST\r\n".encode() + body + b"NOOP\r\n")
        self.assertEqual(self.transport.value().decode().splitlines(), [
            "250 2.1.0 OK", "250 2.1.5 OK", f"250 2.0.0 {len(HEADERS)} octets received",
            "250 2.0.0 OK", "250 2.0.0 OK"])
        stored = raw(self.pool, messages(self.pool)[0]["raw_message_id"])
        self.assertTrue(stored.endswith(HEADERS + body))

    def test_chunk_split_across_reads(self) -> None:
        """A chunk may arrive in several reads."""
        self.auth_plain()
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>")
        self.transport.clear()
        self.protocol.dataReceived(f"BDAT {len(HEADERS) + 2} LAST\r\n".encode() + HEADERS[:5])
        self.assertEqual(self.transport.value(), b"")
        self.protocol.dataReceived(HEADERS[5:] + b"x\r\n")
        self.assertEqual(self.transport.value(), b"250 2.0.0 OK\r\n")
        self.assertEqual(count(self.pool, s.messages), 1)

    def test_bdat_without_recipients(self) -> None:
        """BDAT without a transaction is refused after its chunk is read and thrown away."""
        self.send("EHLO x")
        self.transport.clear()
        self.protocol.dataReceived(b"BDAT 6 LAST\r\nNOOP\r\nNOOP\r\n")
        self.assertEqual(self.transport.value().decode().splitlines(), [
            "503 5.5.1 HELO/EHLO, MAIL FROM and RCPT TO before sending data", "250 2.0.0 OK"])

    def test_data_after_bdat(self) -> None:
        """DATA in a transaction that used BDAT is refused."""
        self.auth_plain()
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>")
        self.protocol.dataReceived(b"BDAT 2\r\nab")
        self.assertEqual(self.send("DATA"), ["503 5.5.1 DATA not allowed after BDAT"])

    def test_too_large(self) -> None:
        """Chunks over the size limit end in 552 and nothing is stored."""
        self.auth_plain()
        self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>")
        size = 1024 * 1024 + 1
        self.transport.clear()
        self.protocol.dataReceived(f"BDAT {size} LAST\r\n".encode() + b"x" * size)
        self.assertEqual(self.transport.value(), b"552 5.3.4 Message too large (maximum size 1MB)\r\n")
        self.assertEqual(count(self.pool, s.messages), 0)

# -*- test-case-name: tests.smtp.test_smuggling -*-
"""
SMTP smuggling: only CRLF.CRLF ends DATA; bare LF or CR variants are data.
Dot-unstuffing applies at CRLF line starts only.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from postal.smtp.data import DataReader
from tests.smtp.fixtures import count, messages, raw
from tests.smtp.test_session import SessionCase


def read(*chunks: bytes, limit: int = 10_000) -> DataReader:
    reader = DataReader(limit)
    for chunk in chunks:
        reader.feed(chunk)
        if reader.done:
            break
    return reader


class DataReaderTests(SynchronousTestCase):
    def test_crlf_dot_crlf_ends(self) -> None:
        """CRLF.CRLF ends the data; what follows is kept for the command parser."""
        reader = read(b"a\r\n.\r\nQUIT\r\n")
        self.assertEqual((reader.done, reader.body(), reader.rest), (True, b"a\r\n", b"QUIT\r\n"))

    def test_empty_message(self) -> None:
        """A dot on the very first line ends an empty message."""
        self.assertEqual(read(b".\r\n").body(), b"")

    def test_bare_lf_dot_does_not_end(self) -> None:
        """LF.LF, CRLF.LF and LF.CRLF are not terminators."""
        for smuggle in (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r"):
            reader = read(b"a" + smuggle + b"MAIL FROM:<x>\r\n")
            self.assertFalse(reader.done, smuggle)

    def test_terminator_split_across_chunks(self) -> None:
        """A terminator split over several reads is still found."""
        reader = read(b"a\r", b"\n", b".", b"\r", b"\nrest")
        self.assertEqual((reader.body(), reader.rest), (b"a\r\n", b"rest"))

    def test_dot_unstuffing(self) -> None:
        """A leading dot is removed from each CRLF-delimited line, only there."""
        reader = read(b"..one\r\nx.y\r\n...\r\n.\r\n")
        self.assertEqual(reader.body(), b".one\r\nx.y\r\n..\r\n")

    def test_too_large(self) -> None:
        """Bytes over the limit are not kept; the terminator is still found."""
        reader = read(b"x" * 50 + b"\r\n.\r\n", limit=10)
        self.assertTrue(reader.done)
        self.assertIsNone(reader.body())


class SmugglingOverTheWireTests(SessionCase):
    def test_smuggled_message_stays_inside(self) -> None:
        """A LF.LF-smuggled second transaction is stored as part of the first message."""
        self.auth_plain()
        smuggled = (b"From: a@example.com\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\n"
                    b"RCPT TO:<victim@gmail.test>\nDATA\nFrom: a@example.com\n\nevil\n.\n")
        replies = self.send("MAIL FROM:<a@example.com>", "RCPT TO:<b@gmail.test>", "DATA", smuggled + b"\r\n.")
        self.assertEqual(replies[-1], "250 2.0.0 OK")
        self.assertEqual(count(self.pool, s.messages), 1)
        stored = raw(self.pool, messages(self.pool)[0]["raw_message_id"])
        self.assertIn(b"RCPT TO:<victim@gmail.test>", stored)

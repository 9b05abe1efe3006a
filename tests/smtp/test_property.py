# -*- test-case-name: tests.smtp.test_property -*-
"""
Property test: random command sequences against the pure session state
machine keep its invariants (valid replies, DATA only after MAIL and an
accepted RCPT, one stored row per accepted recipient, nothing raises).
"""

from __future__ import annotations

import base64
import re

from hypothesis import given, settings, strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from postal.smtp.replies import Reply
from postal.smtp.session import SessionSettings, SMTPSession
from tests.dbhelpers import migrated_pool
from tests.smtp.fixtures import HOSTNAME, SMTP_KEY, count, make_account, make_intake

# Derandomized (the same examples on every run, in CI too), no deadline (a
# commit's duration is not the property under test).  Applied to this test
# only, so other modules' Hypothesis settings are left alone.
settings.register_profile("postal-smtp-ci", derandomize=True, deadline=None, max_examples=60)

GOOD_PLAIN = base64.b64encode(b"\0u\0" + SMTP_KEY.encode()).decode()
COMMANDS = [
    "EHLO client.test", "HELO client.test", "EHLO", "MAIL FROM:<a@example.com>", "MAIL FROM:<>",
    "MAIL FROM:<broken", "MAIL FROM:<a@example.com> SIZE=99999999", "RCPT TO:<b@gmail.test>",
    "RCPT TO:<support@in.example.net>", "RCPT TO:<spam@in.example.net>", "RCPT TO:<>", "RCPT TO:<x>",
    "DATA", "DATA", "RSET", "NOOP", "VRFY x", "AUTH PLAIN " + GOOD_PLAIN, "AUTH PLAIN ***",
    "AUTH LOGIN", "*", "STARTTLS", "", "mail from:<a@example.com>", "BDAT 40 LAST", "BDAT 3",
    "BDAT x",
]
_REPLY = re.compile(rb"^(\d{3})([ -])(.*)\r\n$")


def resolve(outcome: Reply | Deferred[Reply]) -> Reply:
    if isinstance(outcome, Reply):
        return outcome
    results: list[Reply] = []
    outcome.addCallback(results.append)
    assert results, "the synchronous pool decides at once"
    return results[0]


class SessionPropertyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pool = migrated_pool(self)
        make_account(self.pool)

    @settings(settings.get_profile("postal-smtp-ci"))
    @given(st.lists(st.sampled_from(COMMANDS) | st.text(max_size=30), max_size=25))
    def test_invariants(self, lines: list[str]) -> None:
        """Whatever the client sends, replies are well formed and storage matches the 250s."""
        session = SMTPSession(SessionSettings(HOSTNAME, 1024 * 1024), make_intake(self.pool, Clock()),
                              "192.0.2.1", "TRACE001")
        stored_before = count(self.pool, s.messages)
        expected_rows = 0
        for line in lines + ["DATA"]:
            if session.closing:
                break
            had_recipients = len(session.recipients)
            ready = session.mail_from is not None and had_recipients > 0 and not session.in_sasl
            reply = resolve(session.handle_line(line))
            if reply.code == 0:  # BDAT: the reply follows its chunk
                size = session.chunk_expected or 0
                session.chunk_data(b"From: a@example.com\r\n\r\nx\r\n".ljust(size, b"x")[:size])
                reply = resolve(session.chunk_finished())
                if reply.code == 250 and reply.lines == ("OK",):
                    expected_rows += had_recipients
            for wire_line in reply.to_bytes().splitlines(keepends=True):
                match = _REPLY.match(wire_line)
                self.assertIsNotNone(match, wire_line)
            self.assertIn(reply.code // 100, (2, 3, 4, 5))
            if reply.enhanced:
                self.assertEqual(int(reply.enhanced[0]), reply.code // 100)
            if reply.code == 354:
                self.assertTrue(ready and session.in_data)
                final = resolve(session.data_finished(b"From: a@example.com\r\n\r\nx\r\n"))
                if final.code == 250:
                    expected_rows += had_recipients
                self.assertEqual((session.mail_from, session.recipients), (None, []))
            else:
                self.assertFalse(session.in_data)
        self.assertEqual(count(self.pool, s.messages) - stored_before, expected_rows)

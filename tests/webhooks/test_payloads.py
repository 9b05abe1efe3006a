# -*- test-case-name: tests.webhooks.test_payloads -*-
"""Webhook payloads and the request body, byte for byte."""

from __future__ import annotations

import json

import attrs
from twisted.trial.unittest import SynchronousTestCase

from postal.webhooks import payloads


@attrs.frozen
class _Message:
    id: int = 7
    token: str = "tok"
    scope: str = "outgoing"
    message_id: str | None = "abc@rp.test"
    rcpt_to: str | None = "to@x.test"
    mail_from: str | None = "from@acme.test"
    subject: str | None = "Hi"
    timestamp: float = 1714400000.25
    inspected: bool = False
    spam: bool = False
    tag: str | None = "t"


class PayloadTests(SynchronousTestCase):
    def test_message_hash(self) -> None:
        """A message is described with Postal's keys, in Postal's order."""
        self.assertEqual(list(payloads.message_hash(_Message()).items()), [
            ("id", 7), ("token", "tok"), ("direction", "outgoing"), ("message_id", "abc@rp.test"),
            ("to", "to@x.test"), ("from", "from@acme.test"), ("subject", "Hi"), ("timestamp", 1714400000.25),
            ("spam_status", "NotChecked"), ("tag", "t")])

    def test_spam_status(self) -> None:
        """Inspected messages are Spam or NotSpam."""
        self.assertEqual(payloads.message_hash(_Message(inspected=True, spam=True))["spam_status"], "Spam")
        self.assertEqual(payloads.message_hash(_Message(inspected=True))["spam_status"], "NotSpam")

    def test_status_payload(self) -> None:
        """Output is cut to 512 characters the way ActiveSupport's truncate cuts."""
        payload = payloads.status_payload(_Message(), "Sent", "ok", "x" * 600, True, 5.0, 0.5)
        self.assertEqual(list(payload), ["message", "status", "details", "output", "sent_with_ssl",
                                         "timestamp", "time"])
        self.assertEqual(payload["output"], "x" * 509 + "...")
        self.assertEqual(payloads.status_payload(_Message(), "Held", None, None, False, 5.0, None)["output"], "")

    def test_body(self) -> None:
        """The body is compact JSON with event, timestamp, payload and uuid in that order."""
        stored = json.dumps({"b": 1, "a": "é"})
        body = payloads.webhook_body("MessageSent", 1714400000.0, stored, "u-1")
        self.assertEqual(body, '{"event":"MessageSent","timestamp":1714400000.0,"payload":{"b":1,"a":"é"},'
                               '"uuid":"u-1"}'.encode())

    def test_other_payloads(self) -> None:
        """Bounce, click, load and send-limit payloads have Postal's keys."""
        m = _Message()
        self.assertEqual(list(payloads.bounced_payload(m, m)), ["original_message", "bounce"])
        self.assertEqual(list(payloads.link_clicked_payload(m, "u", "t", "1.2.3.4", "UA")),
                         ["message", "url", "token", "ip_address", "user_agent"])
        self.assertEqual(list(payloads.loaded_payload(m, "1.2.3.4", "UA")), ["message", "ip_address", "user_agent"])
        server = payloads.server_hash("uu", "Main", "main", "acme")
        self.assertEqual(payloads.send_limit_payload(server, 90, 100),
                         {"server": {"uuid": "uu", "name": "Main", "permalink": "main", "organization": "acme"},
                          "volume": 90, "limit": 100})

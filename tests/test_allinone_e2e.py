# -*- test-case-name: tests.test_allinone_e2e -*-
"""
End to end through C{twistd -ny postal.tac}, the way README command 1 runs
it: set up with the real C{postal} CLI, submit one message over SMTP (AUTH
PLAIN with an SMTP credential) and one through the HTTP API, and see both
DKIM-signed at a relay sink, and their signed MessageSent webhooks at a
local receiver.  The worker polls only every 60 s here, so prompt delivery
proves the in-process wake-up from intake to worker.
"""

from __future__ import annotations

import base64
import io
import json
import os
import smtplib
import sys
import tempfile

import treq
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from twisted.internet import reactor
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from postal.cli.main import main
from tests.delivery.scripted import Script, ScriptedSMTPFactory
from tests.realworld import ProcessOutput, free_port, listening, wait_until

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
TAC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "postal.tac")


class _Receiver(Resource):
    """A webhook receiver recording each request's headers and exact body."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[dict[str, str], bytes]] = []

    def render_POST(self, request: Request) -> bytes:
        headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        assert request.content is not None
        self.requests.append((headers, request.content.read()))
        return b""


class AllInOneTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="postal-e2e-")
        self.script = Script()
        sink = reactor.listenTCP(0, ScriptedSMTPFactory(self.script), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(sink.stopListening)
        self.receiver = _Receiver()
        hooks = reactor.listenTCP(0, Site(self.receiver), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(hooks.stopListening)
        self.smtp_port, self.web_port = free_port(), free_port()
        self.config = os.path.join(self.folder, "postal.yml")
        with open(self.config, "w") as f:
            yaml.safe_dump({
                "version": 2,
                "postal": {"smtp_relays": [f"smtp://127.0.0.1:{sink.getHost().port}?ssl_mode=None"]},
                "web_server": {"default_port": self.web_port},
                "smtp_server": {"default_port": self.smtp_port, "default_bind_address": "127.0.0.1",
                                "allow_auth_without_tls": True},
                "worker": {"health_port": free_port(), "poll_interval": 60},
                "dns": {"return_path_domain": "rp.postal.test"},
            }, f)
        self.hook_url = f"http://hook:secret@127.0.0.1:{hooks.getHost().port}/postal"

    def postal(self, *argv: str) -> Any:
        out, err = io.StringIO(), io.StringIO()
        code = main(["--config", self.config, "--json", *argv], environ={}, stdout=out, stderr=err)
        self.assertEqual(code, 0, err.getvalue())
        return json.loads(out.getvalue())

    def set_up_installation(self) -> tuple[str, str]:
        self.postal("initialize")
        self.postal("org", "create", "Acme")
        self.postal("server", "create", "acme", "Mail")
        self.postal("domain", "add", "acme/mail", "example.com", "--verified")
        self.postal("webhook", "create", "acme/mail", self.hook_url, "--all-events")
        smtp_key = self.postal("credential", "create", "acme/mail", "--type", "SMTP")["key"]
        api_key = self.postal("credential", "create", "acme/mail", "--type", "API")["key"]
        return smtp_key, api_key

    def start_tac(self) -> None:
        protocol = ProcessOutput()
        env = dict(os.environ, POSTAL_CONFIG_FILE_PATH=self.config)
        transport = reactor.spawnProcess(  # type: ignore[attr-defined]
            protocol, TWISTD, [TWISTD, "-ny", TAC, "--pidfile="], env=env, path=self.folder)

        def stop() -> Deferred[None]:
            if transport.pid is not None:
                transport.signalProcess("TERM")
            return protocol.ended

        self.addCleanup(stop)
        self.process = protocol

    def submit_smtp(self, key: str) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port) as client:
            client.login("acme/mail", key)
            client.sendmail("app@example.com", ["someone@dest.test"],
                            "From: app@example.com\r\nTo: someone@dest.test\r\nSubject: by smtp\r\n\r\nhello\r\n")

    async def test_smtp_and_api_messages_delivered_signed_with_webhooks(self) -> None:
        """
        A message submitted over SMTP and one sent through the API are both
        DKIM-signed and relayed within seconds, and each produces a
        MessageSent webhook whose X-Postal-Signature verifies with the key
        of C{postal default-dkim-record}.
        """
        smtp_key, api_key = self.set_up_installation()
        self.start_tac()
        try:
            await wait_until(lambda: listening(self.smtp_port) and listening(self.web_port))
        except AssertionError:
            self.fail("postal.tac did not start:\n" + self.process.output.decode(errors="replace"))
        started = reactor.seconds()  # type: ignore[attr-defined]
        await deferToThread(self.submit_smtp, smtp_key)
        response = await treq.post(
            f"http://127.0.0.1:{self.web_port}/api/v1/send/message",
            json={"to": ["other@dest.test"], "from": "App <app@example.com>", "subject": "by api",
                  "plain_body": "hi"},
            headers={"X-Server-API-Key": api_key},
            pool=HTTPConnectionPool(reactor, persistent=False))
        body = await response.json()
        self.assertEqual(body["status"], "success", body)
        api_id = body["data"]["messages"]["other@dest.test"]["id"]

        await wait_until(lambda: len(self.script.messages) >= 2, timeout=30)
        self.assertLess(reactor.seconds() - started, 20)  # type: ignore[attr-defined]
        await wait_until(lambda: len(self.receiver.requests) >= 2)
        for _, _, data in self.script.messages:
            self.assertIn(b"DKIM-Signature:", data)
            self.assertIn(b"X-Postal-MsgID:", data)
        self.assertEqual(sorted(rcpt for _, rcpt, _ in self.script.messages),
                         ["RCPT TO:<other@dest.test>", "RCPT TO:<someone@dest.test>"])

        record = self.postal("default-dkim-record")["record"]
        spki = record.split("p=")[1].rstrip(";")
        key = serialization.load_der_public_key(base64.b64decode(spki))
        assert isinstance(key, rsa.RSAPublicKey)
        events = []
        for headers, raw in self.receiver.requests:
            key.verify(base64.b64decode(headers["x-postal-signature"]), raw,
                       padding.PKCS1v15(), hashes.SHA1())
            self.assertEqual(headers["authorization"], "Basic " + base64.b64encode(b"hook:secret").decode())
            envelope = json.loads(raw)
            self.assertEqual(list(envelope), ["event", "timestamp", "payload", "uuid"])
            events.append((envelope["event"], envelope["payload"]["message"]["id"]))
        self.assertIn(("MessageSent", api_id), events)
        self.assertEqual([e for e, _ in events], ["MessageSent", "MessageSent"])

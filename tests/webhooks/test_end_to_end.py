# -*- test-case-name: tests.webhooks.test_end_to_end -*-
"""
End to end over real sockets: a message sent through the web role's API,
its delivery recorded as Sent with the worker's store function
(L{postal.db.deliveries.record_deliveries_txn}, which queues the MessageSent
webhook in the same transaction), then the webhook sender posting it with
real treq to a twisted.web receiver on 127.0.0.1, where its signature is
checked with the key from C{postal default-dkim-record}, as django-anymail
checks it.

The delivery itself stands in for the worker's SMTP leg, which has its own
end-to-end tests; this test covers what happens on both sides of it.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from typing import Any

import treq
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.client import HTTPConnectionPool
from twisted.web.server import Site

from postal.config import default_config
from postal.db import credentials, domains, organizations, servers, webhooks
from postal.db.deliveries import DeliveryRecord, claim_work_txn, record_deliveries_txn
from postal.db.migrate import upgrade
from postal.db.pool import DatabasePool, SynchronousDatabasePool, make_engine
from postal.db.webhook_requests import SQLWebhookQueue
from postal.keys import dkim_record, load_private_key
from postal.tap.web import build
from postal.webhooks.service import build_webhook_sender
from tests.web.apihelpers import DKIM_PEM, SIGNING_PEM
from tests.webhooks.test_signing import public_key_from_dkim_record

KEY = "EndToEndKey0123456789abc"


class _Receiver(Resource):
    """A webhook receiver: checks nothing, records everything, fires when one arrives."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.arrived: Deferred[dict[str, Any]] = Deferred()

    def render_POST(self, request: Any) -> bytes:
        headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        if not self.arrived.called:
            self.arrived.callback({"headers": headers, "body": request.content.read()})
        return b""


class EndToEndTests(TestCase):
    timeout = 30

    def test_api_send_to_signed_webhook(self) -> Deferred[None]:
        """An API message's MessageSent webhook arrives signed, naming the id the API returned."""
        folder = tempfile.mkdtemp(prefix="postal-e2e-")
        with open(os.path.join(folder, "signing.key"), "w") as f:
            f.write(SIGNING_PEM)
        receiver = _Receiver()
        receiver_port = reactor.listenTCP(0, Site(receiver), interface="127.0.0.1")
        self.addCleanup(receiver_port.stopListening)
        url = f"sqlite:///{folder}/postal.sqlite"
        engine = make_engine(url)
        upgrade(engine)
        setup = SynchronousDatabasePool(engine)
        org = setup.call("org", organizations.create_organization_txn, 1.0, "Acme", None, None)
        server = setup.call("server", servers.create_server_txn, 1.0, "acme", "Main", None)
        setup.call("cred", credentials.create_credential_txn, 1.0, server.id, "API", key=KEY)
        setup.call("domain", domains.create_domain_txn, 1.0, org.id, server.id, "acme.test", True, DKIM_PEM)
        hook_url = f"http://user:secret@127.0.0.1:{receiver_port.getHost().port}/hook"
        setup.call("webhook", webhooks.create_webhook_txn, 1.0, server.id, hook_url, None, False, ["MessageSent"])
        config = default_config(folder, database={"url": url},
                                web_server={"default_port": 0, "default_bind_address": "127.0.0.1"},
                                worker={"poll_interval": 0.05})
        pool = DatabasePool(make_engine(url), reactor, threads=2)
        pool.startService()
        self.addCleanup(pool.stopService)
        web = build(config, reactor, pool)
        web.startService()
        self.addCleanup(web.stopService)
        sender = build_webhook_sender(config, reactor, SQLWebhookQueue(pool))
        sender.startService()
        self.addCleanup(sender.stopService)

        async def run() -> None:
            port = (await web.getServiceNamed("web-listener")._waitingForPort).getHost().port  # type: ignore[attr-defined]
            response = await treq.post(
                f"http://127.0.0.1:{port}/api/v1/send/message",
                json.dumps({"to": ["rcpt@example.com"], "from": "me@acme.test", "plain_body": "Hi"}).encode(),
                headers={"Content-Type": "application/json", "X-Server-API-Key": KEY},
                pool=HTTPConnectionPool(reactor, persistent=False))
            sent = json.loads(await response.content())
            message_id = sent["data"]["messages"]["rcpt@example.com"]["id"]
            [item] = await pool.run_in_transaction("claim", claim_work_txn, reactor.seconds(), "e2e", 60.0, 10)
            await pool.run_in_transaction("record", record_deliveries_txn, reactor.seconds(), [DeliveryRecord(
                queue_id=item.queued.id, message_id=message_id, server_id=server.id, status="Sent",
                details="Message for rcpt@example.com accepted by 127.0.0.1", holder="e2e",
                output="250 OK", sent_with_ssl=False, time=0.1)])
            got = await receiver.arrived
            headers, body = got["headers"], got["body"]
            public = public_key_from_dkim_record(dkim_record(load_private_key(SIGNING_PEM)))
            public.verify(base64.b64decode(headers["x-postal-signature"]), body, padding.PKCS1v15(), hashes.SHA1())
            self.assertEqual(headers["authorization"], "Basic " + base64.b64encode(b"user:secret").decode())
            envelope = json.loads(body)
            self.assertEqual(envelope["event"], "MessageSent")
            self.assertEqual(envelope["payload"]["message"]["id"], message_id)
            self.assertEqual(envelope["payload"]["status"], "Sent")

        return Deferred.fromCoroutine(run())

# -*- test-case-name: tests.web.test_tap -*-
"""
The web role over real sockets: the tap's listeners on 127.0.0.1 (port 0),
a real HTTP client (C{http.client} in a thread) sending chunked JSON and
form C{params}, HTTPS with a certificate from the configuration, and the
health page on the same port.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import ssl
import tempfile
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from postal.config import default_config
from postal.db import credentials, domains, organizations, servers
from postal.db.migrate import upgrade
from postal.db.pool import DatabasePool, SynchronousDatabasePool, make_engine
from postal.keys import load_private_key
from postal.tap.web import build
from tests.web.apihelpers import DKIM_PEM, SIGNING_PEM

KEY = "RealSocketKey0123456789a"
MESSAGE = {"to": ["a@x.test"], "from": "me@acme.test", "subject": "S", "plain_body": "Hello"}


def _self_signed(folder: str) -> tuple[str, str]:
    key = load_private_key(SIGNING_PEM)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(folder, "web.cert"), os.path.join(folder, "web.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "w") as f:
        f.write(SIGNING_PEM)
    return cert_path, key_path


def _call(port: int, method: str, path: str, body: Any, headers: dict[str, str], tls: bool = False) -> tuple[int, bytes]:
    """A blocking request with the standard library's client (run in a thread)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers, encode_chunked=headers.get("Transfer-Encoding") == "chunked")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class WebRoleTests(TestCase):
    timeout = 30

    def setUp(self) -> Deferred[None]:
        folder = tempfile.mkdtemp(prefix="postal-web-")
        with open(os.path.join(folder, "signing.key"), "w") as f:
            f.write(SIGNING_PEM)
        cert, key = _self_signed(folder)
        url = f"sqlite:///{folder}/postal.sqlite"
        engine = make_engine(url)
        upgrade(engine)
        setup = SynchronousDatabasePool(engine)
        org = setup.call("org", organizations.create_organization_txn, 1.0, "Acme", None, None)
        server = setup.call("server", servers.create_server_txn, 1.0, "acme", "Main", None)
        setup.call("cred", credentials.create_credential_txn, 1.0, server.id, "API", key=KEY)
        setup.call("domain", domains.create_domain_txn, 1.0, org.id, server.id, "acme.test", True, DKIM_PEM)
        engine.dispose()
        config = default_config(folder, database={"url": url}, web_server={
            "default_port": 0, "default_bind_address": "127.0.0.1", "tls_enabled": True, "tls_port": 0,
            "tls_certificate_path": cert, "tls_private_key_path": key})
        self.pool = DatabasePool(make_engine(url), reactor, threads=2)
        self.pool.startService()
        self.service = build(config, reactor, self.pool)
        self.service.startService()
        self.addCleanup(self.pool.stopService)
        self.addCleanup(self.service.stopService)
        plain = self.service.getServiceNamed("web-listener")  # type: ignore[attr-defined]
        secure = self.service.getServiceNamed("web-tls-listener")  # type: ignore[attr-defined]

        async def ports() -> None:
            self.port = (await plain._waitingForPort).getHost().port
            self.tls_port = (await secure._waitingForPort).getHost().port

        return Deferred.fromCoroutine(ports())

    async def _request(self, method: str, path: str, body: Any, headers: dict[str, str], tls: bool = False) -> Any:
        status, content = await deferToThread(_call, self.tls_port if tls else self.port, method, path, body, headers, tls)
        self.assertEqual(status, 200)
        return json.loads(content) if path.startswith("/api") else content

    def test_chunked_json(self) -> Deferred[None]:
        """A chunked JSON body over a real socket sends a message."""
        chunks = [json.dumps(MESSAGE).encode()[i:i + 7] for i in range(0, 80, 7)]

        async def run() -> None:
            answer = await self._request("POST", "/api/v1/send/message", iter(chunks), {
                "Content-Type": "application/json", "X-Server-API-Key": KEY, "Transfer-Encoding": "chunked"})
            self.assertEqual(answer["status"], "success")
            self.assertEqual(list(answer["data"]["messages"]), ["a@x.test"])

        return Deferred.fromCoroutine(run())

    def test_form_params(self) -> Deferred[None]:
        """A form body with C{params} works over a real socket."""
        async def run() -> None:
            answer = await self._request("POST", "/api/v1/send/message", urlencode({"params": json.dumps(MESSAGE)}), {
                "Content-Type": "application/x-www-form-urlencoded", "x-server-api-key": KEY})
            self.assertEqual(answer["status"], "success")

        return Deferred.fromCoroutine(run())

    def test_multipart_form_params(self) -> Deferred[None]:
        """A multipart/form-data body with C{params} works over a real socket."""
        body = ("--XyZ\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n"
                + json.dumps(MESSAGE) + "\r\n--XyZ--\r\n")

        async def run() -> None:
            answer = await self._request("POST", "/api/v1/send/message", body, {
                "Content-Type": "multipart/form-data; boundary=XyZ", "X-Server-API-Key": KEY})
            self.assertEqual(answer["status"], "success")

        return Deferred.fromCoroutine(run())

    def test_https(self) -> Deferred[None]:
        """The TLS listener serves the same API."""
        async def run() -> None:
            answer = await self._request("POST", "/api/v1/send/message", json.dumps(MESSAGE), {
                "Content-Type": "application/json", "X-Server-API-Key": KEY}, tls=True)
            self.assertEqual(answer["status"], "success")

        return Deferred.fromCoroutine(run())

    def test_health_and_jwks(self) -> Deferred[None]:
        """C{/health}, C{/metrics} and the JWKS document share the port."""
        async def run() -> None:
            self.assertEqual(await self._request("GET", "/health", None, {}), b"OK")
            self.assertIn(b"postal_db_transaction_seconds", await self._request("GET", "/metrics", None, {}))
            jwks = json.loads(await self._request("GET", "/.well-known/jwks.json", None, {}))
            self.assertEqual(jwks["keys"][0]["alg"], "RS256")

        return Deferred.fromCoroutine(run())

    def test_oversized_body(self) -> Deferred[None]:
        """A body over web_server.max_request_size (32 MB by default) is answered in the envelope."""
        async def run() -> None:
            big = json.dumps({**MESSAGE, "plain_body": "x" * (33 * 1024 * 1024)})
            answer = await self._request("POST", "/api/v1/send/message", big, {
                "Content-Type": "application/json", "X-Server-API-Key": KEY})
            self.assertEqual(answer["data"]["code"], "RequestTooLarge")

        return Deferred.fromCoroutine(run())

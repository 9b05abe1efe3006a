"""
A migrated database with an organization, a server, an API key and a
verified domain, and the API v1 application over it, for request-level tests.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from sqlalchemy import Engine
from treq.testing import StubTreq
from twisted.internet.task import Clock

from postal.db import credentials, domains, organizations, servers
from postal.db.api import SQLAPIStore
from postal.db.pool import SynchronousDatabasePool
from postal.keys import generate_rsa_key_pem, jwk, load_private_key
from postal.groupcommit import GroupCommitter
from postal.outgoing.submission import APIMessages
from postal.web.api_v1 import APIv1
from tests.dbhelpers import sqlite_engine

__all__ = ["APIFixture", "make_api_fixture", "DKIM_PEM", "SIGNING_PEM", "WEB_HOSTNAME", "RETURN_PATH_DOMAIN"]

#: One RSA key made per test run: generating one per test would dominate the run time.
DKIM_PEM = generate_rsa_key_pem(2048)
SIGNING_PEM = generate_rsa_key_pem(2048)
WEB_HOSTNAME = "postal.example.com"
RETURN_PATH_DOMAIN = "rp.postal.example.com"
API_KEY = "TestAPIKey0123456789abcd"
NOW = 1796333415.0


@attrs.define
class APIFixture:
    pool: SynchronousDatabasePool
    clock: Clock
    server: servers.Server
    credential: credentials.Credential
    api: APIv1
    client: StubTreq
    key: str = API_KEY

    def post(self, path: str, params: Any, key: str | None = API_KEY, method: str = "POST",
             content_type: str = "application/json") -> Any:
        """Send C{params} as a JSON body and return the decoded answer (asserting HTTP 200)."""
        headers = {"Content-Type": [content_type]}
        if key is not None:
            headers["X-Server-API-Key"] = [key]
        body = params if isinstance(params, bytes) else json.dumps(params).encode()
        return self.request(method, path, body, headers)

    def request(self, method: str, path: str, body: bytes, headers: dict[str, list[str]]) -> Any:
        d = self.client.request(method, "http://api.test" + path, data=body, headers=headers)
        response = _result(d)
        assert response.code == 200, response.code
        assert response.headers.getRawHeaders("content-type") == ["application/json; charset=utf-8"]
        return json.loads(_result(response.content()))


def _result(d: Any) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the request did not complete synchronously"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def make_api_fixture(case: Any, engine: Engine | None = None, allow_sender: bool = False,
                     max_request_size: int = 1024 * 1024) -> APIFixture:
    pool = SynchronousDatabasePool(engine if engine is not None else sqlite_engine(case))
    org = pool.call("org", organizations.create_organization_txn, 1.0, "Acme", None, None)
    server = pool.call("server", servers.create_server_txn, 1.0, "acme", "Main", None)
    if allow_sender:
        from sqlalchemy import update

        from postal.db import schema as s
        with pool.engine.begin() as conn:
            conn.execute(update(s.servers).values(allow_sender=True))
        server = pool.call("server", servers.get_server_txn, server.id)
    credential = pool.call("cred", credentials.create_credential_txn, 1.0, server.id, "API", key=API_KEY)
    pool.call("domain", domains.create_domain_txn, 1.0, org.id, server.id, "acme.test", True, DKIM_PEM)
    clock = Clock()
    clock.advance(NOW)
    store = SQLAPIStore(pool)
    committer = GroupCommitter(store.store_transactions, clock)
    messages = APIMessages(store, committer, clock, WEB_HOSTNAME, RETURN_PATH_DOMAIN)
    api = APIv1(messages, clock, {"keys": [jwk(load_private_key(SIGNING_PEM))]}, max_request_size)
    client = StubTreq(api.app.resource())
    return APIFixture(pool=pool, clock=clock, server=server, credential=credential, api=api, client=client)

# -*- test-case-name: tests.db.test_accounts -*-
"""
Store tests for users, organizations, servers, credentials and domains,
run against SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from postal.db import credentials, domains, organizations, servers
from postal.db.pool import SynchronousDatabasePool
from postal.errors import Conflict, InvalidInput, NotFound
from postal.keys import load_private_key
from tests.dbhelpers import both_databases


class _AccountsMixin:
    make_engine: Any
    assertEqual: Any
    assertRaises: Any
    assertTrue: Any
    assertFalse: Any
    assertIsNone: Any
    assertRegex: Any

    def setUp(self) -> None:
        engine: Engine = self.make_engine()
        self.pool = SynchronousDatabasePool(engine)
        self.org = self.pool.call("org", organizations.create_organization_txn, 1.0, "Acme Inc", None, None)
        self.server = self.pool.call("server", servers.create_server_txn, 1.0, "acme-inc", "Main Mail", None)

    def test_org_permalink_from_name(self) -> None:
        """An organization's permalink is its parameterised name, suffixed -2 when taken."""
        self.assertEqual(self.org.permalink, "acme-inc")
        again = self.pool.call("org", organizations.create_organization_txn, 1.0, "ACME inc.", None, None)
        self.assertEqual(again.permalink, "acme-inc-2")

    def test_explicit_permalink_taken(self) -> None:
        """An explicit permalink that is taken is a Conflict, not a silent suffix."""
        self.assertRaises(Conflict, self.pool.call, "org", organizations.create_organization_txn,
                          1.0, "Other", "acme-inc", None)

    def test_reserved_permalink(self) -> None:
        """Postal's reserved organization permalinks are refused."""
        self.assertRaises(InvalidInput, self.pool.call, "org", organizations.create_organization_txn,
                          1.0, "Admin", "admin", None)

    def test_server_token_and_path(self) -> None:
        """A server gets a 6-letter lowercase token and is found by org/server or org_server."""
        self.assertRegex(self.server.token, r"^[a-z]{6}$")
        self.assertEqual(self.server.permalink, "main-mail")
        self.assertEqual(self.pool.call("f", servers.find_server_txn, "acme-inc/main-mail").id, self.server.id)
        self.assertEqual(self.pool.call("f", servers.find_server_txn, "acme-inc_main-mail").id, self.server.id)
        found = self.pool.call("t", servers.get_server_by_token_txn, self.server.token)
        assert found is not None
        self.assertEqual(found.path, "acme-inc/main-mail")

    def test_unknown_server(self) -> None:
        """An unknown org/server is NotFound naming it."""
        with self.assertRaises(NotFound) as caught:
            self.pool.call("f", servers.find_server_txn, "acme-inc/nope")
        self.assertEqual(str(caught.exception), "no server acme-inc/nope")

    def test_duplicate_server_name(self) -> None:
        """Two servers of one organization cannot share a name or permalink."""
        self.assertRaises(Conflict, self.pool.call, "s", servers.create_server_txn,
                          1.0, "acme-inc", "Main Mail", None)

    def test_suspension_follows_organization(self) -> None:
        """A server counts as suspended when its organization is."""
        from sqlalchemy import update

        from postal.db import schema as s

        with self.pool.engine.begin() as conn:
            conn.execute(update(s.organizations).values(suspended_at=5.0))
        server = self.pool.call("g", servers.get_server_txn, self.server.id)
        self.assertTrue(server.suspended)

    def test_credentials(self) -> None:
        """API/SMTP keys are 24 alphanumerics, unique, and found by key and type."""
        api = self.pool.call("c", credentials.create_credential_txn, 1.0, self.server.id, "API")
        self.assertRegex(api.key, r"^[A-Za-z0-9]{24}$")
        found = self.pool.call("k", credentials.get_credential_by_key_txn, api.key, "API")
        self.assertEqual(found, api)
        self.assertIsNone(self.pool.call("k", credentials.get_credential_by_key_txn, api.key, "SMTP"))
        self.assertRaises(Conflict, self.pool.call, "c", credentials.create_credential_txn,
                          1.0, self.server.id, "SMTP", None, api.key)
        self.assertRaises(InvalidInput, self.pool.call, "c", credentials.create_credential_txn,
                          1.0, self.server.id, "POP3")

    def test_smtp_ip_credentials(self) -> None:
        """SMTP-IP keys must be networks; the most specific network containing the IP wins."""
        self.assertRaises(InvalidInput, self.pool.call, "c", credentials.create_credential_txn,
                          1.0, self.server.id, "SMTP-IP", None, "not-an-ip")
        wide = self.pool.call("c", credentials.create_credential_txn, 1.0, self.server.id, "SMTP-IP", None, "10.0.0.0/8")
        narrow = self.pool.call("c", credentials.create_credential_txn, 1.0, self.server.id, "SMTP-IP", None, "10.1.0.0/16")
        every = self.pool.call("l", credentials.smtp_ip_credentials_txn)
        self.assertEqual(credentials.credential_for_ip(every, "10.1.2.3"), narrow)
        self.assertEqual(credentials.credential_for_ip(every, "::ffff:10.9.9.9"), wide)
        self.assertIsNone(credentials.credential_for_ip(every, "192.0.2.1"))

    def test_domain_gets_rsa_2048_key_and_selector(self) -> None:
        """A new domain has its own RSA-2048 DKIM key and a postal-xxxxxx selector."""
        domain = self.pool.call("d", domains.create_domain_txn, 1.0, self.org.id, self.server.id,
                                "Example.COM", False)
        self.assertEqual(domain.name, "example.com")
        self.assertFalse(domain.verified)
        self.assertEqual(load_private_key(domain.dkim_private_key).key_size, 2048)
        self.assertRegex(domain.dkim_selector("postal"), r"^postal-[a-z0-9]{6}$")
        self.assertRaises(Conflict, self.pool.call, "d", domains.create_domain_txn, 1.0,
                          self.org.id, self.server.id, "example.com", False)
        self.assertRaises(InvalidInput, self.pool.call, "d", domains.create_domain_txn, 1.0,
                          self.org.id, self.server.id, "not a domain", False)

    def test_domains_for_server_prefers_server_owned(self) -> None:
        """A server sees its own domains first, then its organization's."""
        org_owned = self.pool.call("d", domains.create_domain_txn, 1.0, self.org.id, None, "shared.test", True)
        own = self.pool.call("d", domains.create_domain_txn, 1.0, self.org.id, self.server.id, "own.test", True)
        listed = self.pool.call("l", domains.domains_for_server_txn, self.server.id, self.org.id)
        self.assertEqual([d.id for d in listed], [own.id, org_owned.id])


globals().update(both_databases(_AccountsMixin))

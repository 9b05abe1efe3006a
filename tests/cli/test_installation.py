# -*- test-case-name: tests.cli.test_installation -*-
"""C{postal initialize}, C{upgrade} and C{default-dkim-record}, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, inspect, text

from postal.cli.installation import public_url
from postal.db.migrate import head_revision
from postal.keys import dkim_record, load_private_key
from tests.cli.helpers import CLITestCase
from tests.dbhelpers import POSTGRESQL_URL


class InitializeTests(CLITestCase):
    """C{postal initialize} creates what an installation needs, and can run again."""

    def test_creates_database_and_key(self) -> None:
        """A new installation gets a migrated SQLite database and a signing key (mode 0600)."""
        data = self.ok("initialize")
        database = os.path.join(self.folder, "postal.sqlite")
        self.assertEqual(data, {"database": "sqlite:///" + database, "migrated_to": head_revision()})
        engine = create_engine("sqlite:///" + database)
        self.addCleanup(engine.dispose)
        self.assertIn("domains", inspect(engine).get_table_names())
        key = os.path.join(self.folder, "signing.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

    def test_idempotent(self) -> None:
        """Running it again keeps the data and the signing key."""
        self.ok("initialize")
        self.ok("org", "create", "Acme")
        with open(os.path.join(self.folder, "signing.key")) as f:
            key = f.read()
        result = self.cli("initialize")
        self.assertEqual(result.code, 0)
        self.assertNotIn("signing key", result.out)
        with open(os.path.join(self.folder, "signing.key")) as f:
            self.assertEqual(f.read(), key)
        self.assertIn("already taken", self.fails(1, "org", "create", "Acme", "--permalink", "acme"))

    def test_text_output(self) -> None:
        """Without --json it says where the database is and that the key was created."""
        out = self.cli("initialize").out
        self.assertIn(f"is at revision {head_revision()}.", out)
        self.assertIn("Created signing key", out)

    def test_creates_sqlite_folder(self) -> None:
        """A SQLite database in a folder that does not exist yet gets its folder."""
        self.write_config({"database": {"url": "sqlite:///data/deep/postal.sqlite"}})
        self.ok("initialize")
        self.assertTrue(os.path.exists(os.path.join(self.folder, "data", "deep", "postal.sqlite")))

    def test_upgrade(self) -> None:
        """C{postal upgrade} migrates to the newest revision and reports it."""
        self.assertEqual(self.ok("upgrade")["migrated_to"], head_revision())
        self.assertEqual(self.ok("upgrade")["migrated_to"], head_revision())

    def test_hides_password(self) -> None:
        """The database URL printed never shows a password."""
        self.assertEqual(public_url("postgresql+psycopg://postal:s3cret@db:5432/postal"),
                         "postgresql+psycopg://postal:***@db:5432/postal")


class DefaultDKIMRecordTests(CLITestCase):
    """C{postal default-dkim-record} prints the signing key's DKIM record."""

    def test_record(self) -> None:
        """The record is the signing key's public key in Postal's DKIM form."""
        self.ok("initialize")
        with open(os.path.join(self.folder, "signing.key"), "rb") as f:
            expected = dkim_record(load_private_key(f.read()))
        self.assertEqual(self.ok("default-dkim-record"), {"record": expected})
        self.assertEqual(self.cli("default-dkim-record").out, expected + "\n")

    def test_missing_key(self) -> None:
        """Without a signing key it names the path and says to run postal initialize."""
        path = os.path.join(self.folder, "signing.key")
        self.assertEqual(self.fails(1, "default-dkim-record"),
                         f"postal: signing key {path} not found; run postal initialize")


class PostgreSQLInitializeTests(CLITestCase):
    """C{postal initialize} and C{upgrade} against PostgreSQL (POSTAL_TEST_POSTGRESQL_URL)."""

    def setUp(self) -> None:
        if not POSTGRESQL_URL:
            self.skipTest("POSTAL_TEST_POSTGRESQL_URL is not set")
        super().setUp()
        name = "postal_cli_" + uuid.uuid4().hex[:12]
        base, _, _ = POSTGRESQL_URL.rpartition("/")
        self.url = f"{base}/{name}"
        self.write_config({"database": {"url": self.url}})
        admin = create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        self.addCleanup(drop)

    def test_creates_and_migrates(self) -> None:
        """Initialize creates the missing database, migrates it, and is idempotent; upgrade agrees."""
        self.assertEqual(self.ok("initialize"), {"database": self.url, "migrated_to": head_revision()})
        self.assertEqual(self.ok("initialize")["migrated_to"], head_revision())
        self.assertEqual(self.ok("upgrade")["migrated_to"], head_revision())
        self.assertEqual(self.ok("org", "create", "Acme")["permalink"], "acme")

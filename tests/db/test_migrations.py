# -*- test-case-name: tests.db.test_migrations -*-
"""
The migrations build exactly the schema the code declares, from an empty
database, on SQLite and PostgreSQL; running them again changes nothing.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from twisted.trial.unittest import SkipTest

from postal.db.migrate import current_revision, head_revision, upgrade
from postal.db.pool import make_engine
from postal.db.schema import metadata
from tests.dbhelpers import POSTGRESQL_URL, both_databases


def empty_sqlite(case: Any) -> Engine:
    folder = tempfile.mkdtemp(prefix="postal-migrate-")
    engine = make_engine(f"sqlite:///{folder}/postal.sqlite")
    case.addCleanup(engine.dispose)
    return engine


def empty_postgresql(case: Any) -> Engine:
    if not POSTGRESQL_URL:
        raise SkipTest("POSTAL_TEST_POSTGRESQL_URL is not set")
    name = "postal_migrate_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(POSTGRESQL_URL.rpartition("/")[0] + "/" + name, pool_size=2)

    def drop() -> None:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    case.addCleanup(drop)
    return engine


class _MigrationsMixin:
    database: str

    def empty(self) -> Engine:
        return empty_sqlite(self) if self.database == "SQLite" else empty_postgresql(self)

    def test_empty_database_migrates_to_head(self) -> None:
        """An empty database has no revision; after upgrade it is at the newest revision, with every table."""
        engine = self.empty()
        self.assertIsNone(current_revision(engine))  # type: ignore[attr-defined]
        self.assertEqual(upgrade(engine), head_revision())  # type: ignore[attr-defined]
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        self.assertEqual(tables, set(metadata.tables))  # type: ignore[attr-defined]

    def test_migrated_schema_matches_declared_schema(self) -> None:
        """Alembic's autogenerate comparison finds no difference between the migrated database and postal.db.schema (tables, columns, types, indexes, constraints)."""
        engine = self.empty()
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": False})
            differences = compare_metadata(context, metadata)
        self.assertEqual(differences, [], "\n".join(map(repr, differences)))  # type: ignore[attr-defined]

    def test_upgrade_twice_is_idempotent(self) -> None:
        """Running the migration again (postal initialize twice) keeps the revision and the data."""
        engine = self.empty()
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO role_leases (role, holder, acquired_at, expires_at) VALUES ('cron', 'a', 1, 2)"))
        self.assertEqual(upgrade(engine), head_revision())  # type: ignore[attr-defined]
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM role_leases")).scalar_one()
        self.assertEqual(count, 1)  # type: ignore[attr-defined]


globals().update(both_databases(_MigrationsMixin))

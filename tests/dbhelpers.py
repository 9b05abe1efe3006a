"""
Fresh, migrated databases for tests.

C{POSTAL_TEST_POSTGRESQL_URL} (for example
C{postgresql+psycopg://postgres@127.0.0.1:5433/postgres}) turns on the
PostgreSQL half of every store test; each test gets its own database made
from that server and dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Callable

from sqlalchemy import Engine, create_engine, text
from twisted.trial.unittest import SkipTest

from postal.db.migrate import upgrade
from postal.db.pool import SynchronousDatabasePool, make_engine

__all__ = ["POSTGRESQL_URL", "sqlite_engine", "postgresql_engine", "ENGINES", "migrated_pool"]

POSTGRESQL_URL = os.environ.get("POSTAL_TEST_POSTGRESQL_URL", "")

_migrated_template: dict[str, str] = {}


def sqlite_engine(case: object) -> Engine:
    """A migrated SQLite database in a temporary folder, disposed at cleanup."""
    folder = tempfile.mkdtemp(prefix="postal-test-")
    engine = make_engine(f"sqlite:///{folder}/postal.sqlite")
    upgrade(engine)
    case.addCleanup(engine.dispose)  # type: ignore[attr-defined]
    return engine


def postgresql_engine(case: object) -> Engine:
    """A migrated PostgreSQL database of its own, dropped at cleanup."""
    if not POSTGRESQL_URL:
        raise SkipTest("POSTAL_TEST_POSTGRESQL_URL is not set")
    name = "postal_test_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = POSTGRESQL_URL.rpartition("/")
    engine = make_engine(f"{base}/{name}", pool_size=5)
    upgrade(engine)

    def drop() -> None:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    case.addCleanup(drop)  # type: ignore[attr-defined]
    return engine


ENGINES: dict[str, Callable[[object], Engine]] = {
    "SQLite": sqlite_engine,
    "PostgreSQL": postgresql_engine,
}


def migrated_pool(case: object, engine_factory: Callable[[object], Engine] = sqlite_engine) -> SynchronousDatabasePool:
    return SynchronousDatabasePool(engine_factory(case))


def both_databases(mixin: type) -> dict[str, type]:
    """
    Make one TestCase per database from a mixin whose tests call
    C{self.make_engine()}; use as C{globals().update(both_databases(Mixin))}.
    """
    from twisted.trial.unittest import SynchronousTestCase

    cases = {}
    for label, factory in ENGINES.items():
        name = mixin.__name__.lstrip("_").replace("Mixin", "") + label + "Tests"
        cases[name] = type(name, (mixin, SynchronousTestCase), {
            "make_engine": lambda self, f=factory: f(self),
            "database": label,
            "__module__": mixin.__module__,
        })
    return cases

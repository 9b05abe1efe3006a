# -*- test-case-name: tests.db.test_migrations -*-
"""
Create or migrate the database to the newest schema with Alembic.

Blocking: called from the CLI, or from a pool thread.
"""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = ["upgrade", "current_revision", "head_revision"]

_HERE = os.path.join(os.path.dirname(__file__), "migrations")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", _HERE)
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate to C{revision}; safe to run again; returns the revision reached."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    reached = current_revision(engine)
    assert reached is not None
    return reached

# -*- test-case-name: tests.cli.test_installation -*-
"""
C{postal initialize}, C{upgrade}, C{default-dkim-record} and C{version}:
the installation itself rather than what lives in it.
"""

from __future__ import annotations

import argparse
import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from postal._version import __version__
from postal.cli._context import CommandContext
from postal.db.migrate import upgrade
from postal.errors import NotFound
from postal.keys import dkim_record, ensure_signing_key, load_private_key

__all__ = ["register", "public_url"]


def public_url(url: str) -> str:
    """The database URL with any password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _create_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        folder = os.path.dirname(os.path.abspath(database))
        os.makedirs(folder, exist_ok=True)


def _create_postgresql_database(url: str) -> None:
    """Create the database named in C{url} when it does not exist (Postal's C{db:create})."""
    parsed = make_url(url)
    probe = create_engine(url)
    try:
        with probe.connect():
            return
    except OperationalError as e:
        if "does not exist" not in str(e.orig):
            raise
    finally:
        probe.dispose()
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = (parsed.database or "").replace('"', '""')
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def _migrate(ctx: CommandContext) -> str:
    return upgrade(ctx.pool.engine)


def initialize(ctx: CommandContext) -> None:
    url = ctx.config.database_url
    if url.startswith("sqlite"):
        _create_sqlite_folder(url)
    else:
        _create_postgresql_database(url)
    revision = _migrate(ctx)
    key_path = ctx.config.postal.signing_key_path
    lines = [f"Database {public_url(url)} is at revision {revision}."]
    if key_path and ensure_signing_key(key_path):
        lines.append(f"Created signing key {key_path}.")
    ctx.emit({"database": public_url(url), "migrated_to": revision}, *lines)


def upgrade_command(ctx: CommandContext) -> None:
    url = ctx.config.database_url
    revision = _migrate(ctx)
    ctx.emit({"database": public_url(url), "migrated_to": revision},
             f"Database {public_url(url)} is at revision {revision}.")


def default_dkim_record(ctx: CommandContext) -> None:
    path = ctx.config.postal.signing_key_path
    if not path or not os.path.exists(path):
        raise NotFound(f"signing key {path} not found; run postal initialize")
    with open(path, "rb") as f:
        record = dkim_record(load_private_key(f.read()))
    ctx.emit({"record": record}, record)


def version(ctx: CommandContext) -> None:
    ctx.emit({"version": __version__}, __version__)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    commands.add_parser(
        "initialize", parents=[common], help="create or migrate the database and create the signing key",
    ).set_defaults(handler=initialize)
    commands.add_parser(
        "upgrade", parents=[common], help="migrate the database to the newest schema",
    ).set_defaults(handler=upgrade_command)
    commands.add_parser(
        "default-dkim-record", parents=[common], help="print the DKIM record of the signing key",
    ).set_defaults(handler=default_dkim_record)
    commands.add_parser(
        "version", parents=[common], help="print the version",
    ).set_defaults(handler=version, needs_config=False)

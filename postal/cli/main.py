# -*- test-case-name: tests.cli.test_main -*-
"""
The C{postal} command: parse, load the configuration, run one verb.

Every verb takes C{--config PATH} (else C{$POSTAL_CONFIG_FILE_PATH}, else
C{./postal.yml}) and C{--json} (one JSON object on stdout).  Errors are
one line on stderr: exit status 1, or 2 for a usage error.  Tests call
L{main} in-process with their own arguments, environment, streams and
L{Runtime}.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import IO, Mapping, NoReturn, Sequence

from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from postal.cli import accounts, cron, domains, installation, queue, server_items, supervisor
from postal.cli._context import CommandContext, Runtime, reactor_runtime
from postal.config import ConfigError, PostalConfig, config_path_from, default_config, load_config
from postal.errors import PostalError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    # Options every verb accepts; SUPPRESS keeps a verb's parser from
    # overwriting a value given before the verb.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="postal.yml (default: $POSTAL_CONFIG_FILE_PATH, else ./postal.yml)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON object on standard output")
    parser = _Parser(prog="postal", description="Manage a txpostal installation.")
    parser.add_argument("--config", metavar="PATH", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (installation, accounts, domains, server_items, queue, cron, supervisor):
        module.register(commands, common)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _database_error(error: SQLAlchemyError) -> str:
    detail = str(error.orig) if isinstance(error, DBAPIError) else str(error)
    detail = _one_line(detail.split("\n")[0])
    if "no such table" in detail or ("relation" in detail and "does not exist" in detail):
        detail += "; run postal initialize"
    return f"database error: {detail}"


def _load(args: argparse.Namespace, environ: Mapping[str, str]) -> PostalConfig:
    if not getattr(args, "needs_config", True):
        return default_config(os.getcwd())
    return load_config(config_path_from(args.config, environ), environ)


def _run(args: argparse.Namespace, environ: Mapping[str, str], stdout: IO[str], runtime: Runtime | None) -> None:
    config = _load(args, environ)
    ctx = CommandContext(args, config, runtime or reactor_runtime(), stdout)
    try:
        args.handler(ctx)
    finally:
        ctx.close()


def _error_text(error: BaseException) -> str:
    """The one line a user sees for an error, by kind."""
    if isinstance(error, ConfigError):
        return f"configuration error: {error}"
    if isinstance(error, PostalError):
        return str(error)
    if isinstance(error, SQLAlchemyError):
        return _database_error(error)
    if isinstance(error, CommandError):
        return f"migration failed: {error}"
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"internal error: {type(error).__name__}: {error}"


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    runtime: Runtime | None = None,
) -> int:
    """Run one C{postal} command; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        with redirect_stdout(out), redirect_stderr(err):
            args = build_parser().parse_args(arguments)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    try:
        _run(args, env, out, runtime)
    except (Exception, KeyboardInterrupt) as e:
        err.write(f"postal: {_one_line(_error_text(e))}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

# -*- test-case-name: tests.cli.test_accounts -*-
"""C{postal make-user}, C{org create} and C{server create}."""

from __future__ import annotations

import argparse

from postal.cli._context import CommandContext
from postal.db.organizations import create_organization_txn, create_user_txn, get_user_by_email_txn
from postal.db.servers import MODES, create_server_txn
from postal.errors import InvalidInput, NotFound
from postal.passwords import hash_password

__all__ = ["register"]

_USER_FIELDS = (
    ("email", "--email", "E-Mail address"),
    ("first_name", "--first-name", "First name"),
    ("last_name", "--last-name", "Last name"),
    ("password", "--password", "Password"),
)


def _complete_user_fields(ctx: CommandContext) -> dict[str, str]:
    """
    The user's fields from the options, asking for the missing ones on a
    terminal (the password without echo); elsewhere a missing one is an error.
    """
    values: dict[str, str] = {}
    for dest, option, label in _USER_FIELDS:
        value = getattr(ctx.args, dest)
        if value is None:
            if not ctx.runtime.interactive:
                raise InvalidInput(f"{option} is required (not asking: standard input is not a terminal)")
            if dest == "password":
                value = ctx.runtime.ask_secret(f"{label}: ")
            else:
                value = ctx.runtime.ask(f"{label}: ").strip()
        if not value:
            raise InvalidInput(f"{option} must not be empty")
        values[dest] = value
    return values


def make_user(ctx: CommandContext) -> None:
    fields = _complete_user_fields(ctx)
    digest = hash_password(fields["password"])
    user = ctx.pool.call(
        "make_user", create_user_txn, ctx.now(), fields["email"], fields["first_name"],
        fields["last_name"], digest, bool(ctx.args.admin),
    )
    role = "admin user" if user.admin else "user"
    ctx.emit({"uuid": user.uuid}, f"Created {role} {user.email_address} ({user.uuid}).")


def org_create(ctx: CommandContext) -> None:
    owner_id = None
    if ctx.args.owner:
        owner = ctx.pool.call("find_user", get_user_by_email_txn, ctx.args.owner)
        if owner is None:
            raise NotFound(f"no user with e-mail address {ctx.args.owner}")
        owner_id = owner.id
    org = ctx.pool.call("create_organization", create_organization_txn, ctx.now(), ctx.args.name,
                        ctx.args.permalink, owner_id)
    ctx.emit({"uuid": org.uuid, "permalink": org.permalink},
             f"Created organization {org.name} (permalink {org.permalink}, uuid {org.uuid}).")


def server_create(ctx: CommandContext) -> None:
    server = ctx.pool.call("create_server", create_server_txn, ctx.now(), ctx.args.org, ctx.args.name,
                           ctx.args.permalink, ctx.args.mode)
    ctx.emit({"uuid": server.uuid, "permalink": server.permalink, "token": server.token},
             f"Created server {server.path} ({server.mode}, uuid {server.uuid}).",
             f"Token: {server.token}")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    user = commands.add_parser("make-user", parents=[common], help="create a user (asks for what is missing)")
    for _, option, label in _USER_FIELDS:
        user.add_argument(option, help=label)
    user.add_argument("--admin", action="store_true", help="make the user an administrator")
    user.set_defaults(handler=make_user)

    org = commands.add_parser("org", help="organizations").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    create = org.add_parser("create", parents=[common], help="create an organization")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--permalink", help="short name used in ORG/SERVER (default: from NAME)")
    create.add_argument("--owner", metavar="EMAIL", help="e-mail address of an existing user who owns it")
    create.set_defaults(handler=org_create)

    server = commands.add_parser("server", help="mail servers").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    create = server.add_parser("create", parents=[common], help="create a mail server")
    create.add_argument("org", metavar="ORG", help="the organization's permalink")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--permalink", help="short name used in ORG/SERVER (default: from NAME)")
    create.add_argument("--mode", choices=MODES, default="Live")
    create.set_defaults(handler=server_create)

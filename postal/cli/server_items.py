# -*- test-case-name: tests.cli.test_server_items -*-
"""C{postal credential create} and C{postal webhook create}: things a mail server owns."""

from __future__ import annotations

import argparse

from postal.cli._context import CommandContext
from postal.db.credentials import CREDENTIAL_TYPES, create_credential_txn
from postal.db.servers import find_server_txn
from postal.db.webhooks import WEBHOOK_EVENTS, create_webhook_txn

__all__ = ["register"]


def credential_create(ctx: CommandContext) -> None:
    server = ctx.pool.call("find_server", find_server_txn, ctx.args.server)
    credential = ctx.pool.call(
        "create_credential", create_credential_txn, ctx.now(), server.id, ctx.args.type,
        ctx.args.name, ctx.args.key, bool(ctx.args.hold),
    )
    ctx.emit({"uuid": credential.uuid, "type": credential.type, "key": credential.key},
             f"Created {credential.type} credential for {server.path} (uuid {credential.uuid}).",
             f"Key: {credential.key}")


def webhook_create(ctx: CommandContext) -> None:
    server = ctx.pool.call("find_server", find_server_txn, ctx.args.server)
    events = ctx.args.events or []
    webhook = ctx.pool.call("create_webhook", create_webhook_txn, ctx.now(), server.id, ctx.args.url,
                            ctx.args.name, bool(ctx.args.all_events), events)
    what = "all events" if webhook.all_events else ", ".join(dict.fromkeys(events))
    ctx.emit({"uuid": webhook.uuid},
             f"Created webhook {webhook.uuid} for {server.path}: {what} to {webhook.url}.")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    credential = commands.add_parser("credential", help="SMTP and API credentials").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    create = credential.add_parser("create", parents=[common], help="create a credential")
    create.add_argument("server", metavar="ORG/SERVER")
    create.add_argument("--type", required=True, choices=CREDENTIAL_TYPES)
    create.add_argument("--name", help="a label for the credential")
    create.add_argument("--key", help="the key (default: random); for SMTP-IP an address or network")
    create.add_argument("--hold", action="store_true", help="hold messages sent with this credential")
    create.set_defaults(handler=credential_create)

    webhook = commands.add_parser("webhook", help="webhooks").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    create = webhook.add_parser("create", parents=[common], help="create a webhook")
    create.add_argument("server", metavar="ORG/SERVER")
    create.add_argument("url", metavar="URL")
    events = create.add_mutually_exclusive_group(required=True)
    events.add_argument("--all-events", action="store_true", help="send every event")
    events.add_argument("--event", dest="events", action="append", metavar="NAME",
                        help=f"send this event (repeatable): {', '.join(WEBHOOK_EVENTS)}")
    create.add_argument("--name", help="a label for the webhook")
    create.set_defaults(handler=webhook_create)

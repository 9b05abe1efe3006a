# -*- test-case-name: tests.delivery.test_cli_queue -*-
"""
C{postal queue list|retry|release|cancel-hold|remove ORG/SERVER}: the
operator's queue operations, by message id (C{--id}, repeatable) or in
bulk (C{--all}, C{--domain D}).  C{list}, C{retry} and C{remove} act on
queued messages; C{release} and C{cancel-hold} on held ones.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from postal.cli._context import CommandContext
from postal.db.queue import (
    QueueFilter, cancel_hold_txn, list_queue_txn, release_held_txn, remove_queued_txn, retry_queued_txn,
)
from postal.db.servers import find_server_txn
from postal.errors import InvalidInput

__all__ = ["register", "add_queue_commands"]


def _filter(ctx: CommandContext, server_id: int, require_selection: bool = True) -> QueueFilter:
    ids = tuple(ctx.args.ids or ())
    if require_selection and not ids and not ctx.args.all and ctx.args.domain is None:
        raise InvalidInput("choose --id ID, --domain DOMAIN or --all")
    return QueueFilter(server_id=server_id, ids=ids, domain=ctx.args.domain)


def queue_list(ctx: CommandContext) -> None:
    server = ctx.pool.call("find_server", find_server_txn, ctx.args.server)
    rows = ctx.pool.call("list_queue", list_queue_txn, _filter(ctx, server.id, False), ctx.args.limit)
    now = ctx.now()
    items = [{"message_id": r.message_id, "domain": r.domain, "attempts": r.attempts,
              "retry_after": r.retry_after, "locked": r.locked_by is not None, "manual": r.manual}
             for r in rows]
    lines = [f"{len(rows)} queued message(s) on {server.path}"]
    for r in rows:
        due = "ready" if r.retry_after is None or r.retry_after <= now else f"retry in {r.retry_after - now:.0f}s"
        state = "delivering" if r.locked_by else due
        lines.append(f"  {r.message_id}  {r.domain or '-'}  attempts={r.attempts}  {state}")
    ctx.emit({"messages": items}, *lines)


def _bulk(verb: str, name: str, fn: Callable[..., int], with_now: bool) -> Callable[[CommandContext], None]:
    def handler(ctx: CommandContext) -> None:
        server = ctx.pool.call("find_server", find_server_txn, ctx.args.server)
        flt = _filter(ctx, server.id)
        args: tuple[Any, ...] = (ctx.now(), flt) if with_now else (flt,)
        count = ctx.pool.call(name, fn, *args)
        ctx.emit({verb: count}, f"{verb.capitalize()} {count} message(s) on {server.path}.")
    return handler


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    queue = commands.add_parser("queue", help="the message queue").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    verbs = [
        ("list", "list queued messages", queue_list),
        ("retry", "make queued messages ready now", _bulk("retried", "retry_queued", retry_queued_txn, False)),
        ("release", "release held messages (send them, bypassing holds that allow it)",
         _bulk("released", "release_held", release_held_txn, True)),
        ("cancel-hold", "cancel the hold on held messages without sending",
         _bulk("cancelled", "cancel_hold", cancel_hold_txn, True)),
        ("remove", "remove queued messages from the queue", _bulk("removed", "remove_queued", remove_queued_txn, False)),
    ]
    for name, help_text, handler in verbs:
        parser = queue.add_parser(name, parents=[common], help=help_text)
        parser.add_argument("server", metavar="ORG/SERVER")
        parser.add_argument("--id", dest="ids", action="append", type=int, metavar="ID",
                            help="a message id (repeatable)")
        parser.add_argument("--domain", help="every message to this recipient domain")
        parser.add_argument("--all", action="store_true", help="every matching message")
        if name == "list":
            parser.add_argument("--limit", type=int, default=1000)
        parser.set_defaults(handler=handler)


def add_queue_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The name the task asked for; the same as L{register}."""
    register(commands, common)

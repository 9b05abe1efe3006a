# -*- test-case-name: tests.cli.test_domains -*-
"""
C{postal domain add} (prints the DNS records to publish) and C{postal
domain check} (verifies ownership, then runs Postal's four DNS checks and
stores them).
"""

from __future__ import annotations

import argparse
from typing import Any

from postal.cli._context import CommandContext
from twisted.internet.defer import Deferred

from postal.db.domains import Domain, create_domain_txn, find_domain_txn, record_dns_check_txn, verify_domain_txn
from postal.db.servers import find_server_txn
from postal.domain_checks import DomainDNSChecker, PublishedRecord, published_records, verification_record

__all__ = ["register"]

_CHECKS = (("SPF", "spf"), ("DKIM", "dkim"), ("MX", "mx"), ("Return path", "return_path"))


def _record_line(record: PublishedRecord) -> str:
    value = f"{record.priority} {record.value}" if record.priority is not None else record.value
    if record.type == "TXT":
        value = f'"{value}"'
    return f"  {record.type:<5} {record.name}  {value}"


def domain_add(ctx: CommandContext) -> None:
    server = ctx.pool.call("find_server", find_server_txn, ctx.args.server)
    domain = ctx.pool.call("create_domain", create_domain_txn, ctx.now(), server.organization_id, server.id,
                           ctx.args.name, bool(ctx.args.verified))
    records = published_records(domain, ctx.config.dns)
    selector = domain.dkim_selector(ctx.config.dns.dkim_identifier)
    state = "verified" if domain.verified else "not verified yet"
    ctx.emit(
        {"uuid": domain.uuid, "name": domain.name, "dkim_selector": selector, "verified": domain.verified,
         "records": [r.as_json() for r in records]},
        f"Added domain {domain.name} to {server.path} ({state}, uuid {domain.uuid}).",
        "Publish these DNS records:",
        *(_record_line(r) for r in records),
    )


def _check_json(domain: Domain) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uuid": domain.uuid, "name": domain.name, "verified": domain.verified,
        "verified_at": domain.verified_at, "dns_checked_at": domain.dns_checked_at,
    }
    for _, field in _CHECKS:
        data[f"{field}_status"] = getattr(domain, f"{field}_status")
        data[f"{field}_error"] = getattr(domain, f"{field}_error")
    data["dns_ok"] = _dns_ok(domain)
    return data


def _dns_ok(domain: Domain) -> bool:
    return (domain.spf_status == "OK" and domain.dkim_status == "OK"
            and domain.mx_status in ("OK", "Missing") and domain.return_path_status in ("OK", "Missing"))


def _check_lines(domain: Domain, ctx: CommandContext) -> list[str]:
    if domain.verified:
        lines = [f"{domain.name}: verified"]
    else:
        record = verification_record(domain, ctx.config.dns)
        lines = [f'{domain.name}: not verified (publish TXT {domain.name} "{record}")']
    for label, field in _CHECKS:
        status = getattr(domain, f"{field}_status")
        error = getattr(domain, f"{field}_error")
        lines.append(f"  {label:<12} {status:<8} {error or ''}".rstrip())
    lines.append("DNS is OK." if _dns_ok(domain) else "DNS needs attention.")
    return lines


async def _check_and_record(ctx: CommandContext, checker: DomainDNSChecker, domain: Domain) -> Domain:
    """
    Verify an unverified domain when its TXT record is there, then run the
    four checks and store them (nothing is stored if a lookup fails).
    """
    if not domain.verified and await checker.verify(domain):
        ctx.pool.call("verify_domain", verify_domain_txn, domain.id, ctx.now())
    result = await checker.check(domain)
    return ctx.pool.call("record_dns_check", record_dns_check_txn, domain.id, ctx.now(), result)


def domain_check(ctx: CommandContext) -> None:
    server = ctx.pool.call("find_server", find_server_txn, ctx.args.server)
    domain = ctx.pool.call("find_domain", find_domain_txn, server.id, server.organization_id, ctx.args.name)
    checker = DomainDNSChecker(ctx.runtime.resolver_for(ctx.config), ctx.config.dns)
    checked: Domain = ctx.runtime.wait(lambda: Deferred.fromCoroutine(_check_and_record(ctx, checker, domain)))
    ctx.emit(_check_json(checked), *_check_lines(checked, ctx))


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    domain = commands.add_parser("domain", help="sending domains").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    add = domain.add_parser("add", parents=[common], help="add a domain and print the DNS records to publish")
    add.add_argument("server", metavar="ORG/SERVER")
    add.add_argument("name", metavar="NAME", help="the domain name")
    add.add_argument("--verified", action="store_true", help="mark it verified at once (operators)")
    add.set_defaults(handler=domain_add)
    check = domain.add_parser("check", parents=[common], help="verify ownership and check SPF, DKIM, MX, return path")
    check.add_argument("server", metavar="ORG/SERVER")
    check.add_argument("name", metavar="NAME", help="the domain name")
    check.set_defaults(handler=domain_check)

# -*- test-case-name: tests.cron.test_dns_checks -*-
"""
The hourly DNS re-check: with L{FakeResolver} on SQLite and PostgreSQL,
and end to end through the real resolver and a local DNS server, a
broken record fires DomainDNSError with Postal's payload.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from postal.config import DNSSettings
from postal.cron.dns_checks import CheckAllDNS
from postal.cron.service import dns_checkers
from postal.cron.task import TaskIncomplete
from postal.cron.track_domains import TrackDomainCNAMEChecker
from postal.db import schema as s
from postal.db.domains import Domain, get_domain_txn
from postal.db.pool import SynchronousDatabasePool
from postal.dns import CNAMERecord, TXTRecord, make_resolver
from postal.domain_checks import DomainDNSChecker, dkim_record_name, published_records
from postal.keys import generate_rsa_key_pem
from postal.testing import FakeResolver, Zone
from tests.cron.fixtures import NOW, Installation
from tests.dbhelpers import ENGINES, both_databases
from tests.dnsserver import start_dns_server
from tests.test_domain_checks import publish

SETTINGS = DNSSettings(
    mx_records=("mx1.postal.example.com", "mx2.postal.example.com"),
    spf_include="spf.postal.example.com", return_path_domain="rp.postal.example.com",
)
_KEY = generate_rsa_key_pem()


def _setup(case: Any, engine_factory: Any) -> None:
    case.pool = SynchronousDatabasePool(engine_factory(case))
    case.site = Installation(case.pool)
    case.zone = Zone()


def _add_published(case: Any, name: str, checked_at: float | None = NOW - 7200,
                   organization_owned: bool = False) -> Domain:
    domain_id = case.site.add_domain(name, checked_at=checked_at, key=_KEY,
                                     organization_owned=organization_owned)
    domain: Domain = case.pool.call("get", get_domain_txn, domain_id)
    publish(case.zone, published_records(domain, SETTINGS))
    return domain


def _break_dkim(case: Any, domain: Domain) -> None:
    case.zone.replace(dkim_record_name(domain, SETTINGS), TXTRecord("v=DKIM1; p=wrong;"))


class _FakeResolverMixin:
    make_engine: Any
    pool: SynchronousDatabasePool
    site: Installation
    zone: Zone
    assertEqual: Any
    assertIsNone: Any
    successResultOf: Any
    failureResultOf: Any
    flushLoggedErrors: Any

    def setUp(self) -> None:
        _setup(self, lambda case: self.make_engine())
        self.clock = Clock()
        self.clock.advance(NOW)
        self.resolver = FakeResolver(self.zone)
        self.task_check_domain = DomainDNSChecker(self.resolver, SETTINGS).check
        self.task = CheckAllDNS(self.pool, self.clock, check_domain=self.task_check_domain)

    def test_broken_record_fires_domain_dns_error(self) -> None:
        """A server's domain whose DKIM record broke gets DomainDNSError with Postal's payload."""
        self._webhook()
        good = _add_published(self, "good.test")
        bad = _add_published(self, "bad.test")
        _break_dkim(self, bad)
        self.assertEqual(self.successResultOf(self.task.run()), "checked 2 domains, 1 with DNS errors")
        [request] = self.site.webhook_requests()
        self.assertEqual(request.event, "DomainDNSError")
        payload = json.loads(request.payload)
        self.assertEqual(list(payload), [
            "server", "domain", "uuid", "dns_checked_at", "spf_status", "spf_error", "dkim_status",
            "dkim_error", "mx_status", "mx_error", "return_path_status", "return_path_error"])
        self.assertEqual((payload["domain"], payload["uuid"], payload["dns_checked_at"]),
                         ("bad.test", bad.uuid, NOW))
        self.assertEqual((payload["spf_status"], payload["dkim_status"], payload["mx_status"]),
                         ("OK", "Invalid", "OK"))
        self.assertEqual(payload["server"]["organization"], "acme")
        checked = self.pool.call("get", get_domain_txn, good.id)
        self.assertEqual((checked.dns_checked_at, checked.dkim_status), (NOW, "OK"))

    def test_only_stale_checked_domains(self) -> None:
        """Domains never checked, or checked within the hour, are left alone."""
        never = _add_published(self, "never.test", checked_at=None)
        recent = _add_published(self, "recent.test", checked_at=NOW - 600)
        _break_dkim(self, never)
        _break_dkim(self, recent)
        self.assertEqual(self.successResultOf(self.task.run()), "checked 0 domains, 0 with DNS errors")
        self.assertEqual(self.resolver.queries, [])

    def test_organization_domain_records_without_webhook(self) -> None:
        """An organization's domain is re-checked but never fires DomainDNSError."""
        self._webhook()
        domain = _add_published(self, "org.test", organization_owned=True)
        _break_dkim(self, domain)
        self.successResultOf(self.task.run())
        self.assertEqual(self.site.webhook_requests(), [])
        checked = self.pool.call("get", get_domain_txn, domain.id)
        self.assertEqual(checked.dkim_status, "Invalid")

    def test_lookup_failure_skips_domain(self) -> None:
        """A domain whose lookups fail is not recorded; the others are; the task reports it."""
        self._webhook()
        flaky = _add_published(self, "flaky.test")
        _add_published(self, "fine.test")
        self.zone.fail(flaky.name)
        failure = self.failureResultOf(self.task.run(), TaskIncomplete)
        self.assertEqual(str(failure.value), "checked 1 domains, 0 with DNS errors; 1 checks failed")
        self.assertIsNone(self.pool.call("get", get_domain_txn, flaky.id).dkim_status)
        self.assertEqual(self.site.webhook_requests(), [])
        self.flushLoggedErrors()

    def test_track_domains(self) -> None:
        """Track domains due are checked for their CNAME to dns.track_domain; no webhook."""
        self._webhook()
        domain = _add_published(self, "shop.test")
        statuses = {}
        for name, target, checked_at in (("ok", "track.postal.example.com", None),
                                         ("wrong", "elsewhere.test", NOW - 7200),
                                         ("missing", None, None), ("recent", None, NOW - 60)):
            statuses[name] = self.site.execute(insert(s.track_domains).values(
                uuid=name, server_id=self.site.server.id, domain_id=domain.id, name=name,
                dns_checked_at=checked_at, ssl_enabled=True, track_clicks=True, track_loads=True,
                created_at=1.0))
            if target is not None:
                self.zone.add(f"{name}.shop.test", CNAMERecord(target))
        task = CheckAllDNS(self.pool, self.clock, check_domain=self.task_check_domain,
                           check_track_domain=TrackDomainCNAMEChecker(self.resolver, "track.postal.example.com"))
        self.assertEqual(self.successResultOf(task.run()),
                         "checked 1 domains, 0 with DNS errors; checked 3 track domains")
        with self.pool.engine.connect() as conn:
            rows = {r.name: r for r in conn.execute(select(s.track_domains))}
        self.assertEqual({name: rows[name].dns_status for name in rows},
                         {"ok": "OK", "wrong": "Invalid", "missing": "Missing", "recent": None})
        self.assertEqual(rows["missing"].dns_error, "There is no record at missing.shop.test")
        self.assertEqual(rows["wrong"].dns_error,
                         "There is a CNAME record at wrong.shop.test but it points to elsewhere.test "
                         "which is incorrect. It should point to track.postal.example.com.")
        self.assertEqual(rows["ok"].dns_checked_at, NOW)
        self.assertEqual(self.site.webhook_requests(), [])

    def _webhook(self) -> None:
        """A webhook subscribed to DomainDNSError only."""
        self.site.add_webhook(all_events=False, events=("DomainDNSError",))


globals().update(both_databases(_FakeResolverMixin))


class _LocalDNSServerMixin:
    engine_factory: Any
    pool: SynchronousDatabasePool
    site: Installation
    zone: Zone
    assertEqual: Any

    def setUp(self) -> None:
        _setup(self, self.engine_factory)
        self.server = start_dns_server(self, self.zone)

    async def test_broken_record_over_dns(self) -> None:
        """
        Through the role's resolver wiring and a DNS server, a record broken
        since the last check fires DomainDNSError, and track domains are checked.
        """
        settings = DNSSettings(mx_records=SETTINGS.mx_records, spf_include=SETTINGS.spf_include,
                               return_path_domain=SETTINGS.return_path_domain,
                               track_domain="track.postal.example.com",
                               nameservers=(self.server.nameserver,), timeout=2.0)
        self.site.add_webhook(all_events=True)
        intact = _add_published(self, "intact.test", checked_at=1.0)
        broken = _add_published(self, "broken.test", checked_at=1.0)
        _break_dkim(self, broken)
        self.site.execute(insert(s.track_domains).values(
            uuid="t", server_id=self.site.server.id, domain_id=intact.id, name="click", ssl_enabled=True,
            track_clicks=True, track_loads=True, created_at=1.0))
        self.zone.add("click.intact.test", CNAMERecord("track.postal.example.com"))
        check_domain, check_track = dns_checkers(lambda: make_resolver(settings, reactor), settings)
        task = CheckAllDNS(self.pool, reactor, check_domain=check_domain, check_track_domain=check_track)
        summary = await task.run()
        self.assertEqual(summary, "checked 2 domains, 1 with DNS errors; checked 1 track domains")
        [request] = self.site.webhook_requests()
        payload = json.loads(request.payload)
        self.assertEqual((request.event, payload["domain"], payload["dkim_status"]),
                         ("DomainDNSError", "broken.test", "Invalid"))
        with self.pool.engine.connect() as conn:
            statuses = dict(conn.execute(select(s.domains.c.name, s.domains.c.dkim_status)).all())
            track_status = conn.execute(select(s.track_domains.c.dns_status)).scalar_one()
        self.assertEqual(statuses, {intact.name: "OK", broken.name: "Invalid"})
        self.assertEqual(track_status, "OK")


for _label, _factory in ENGINES.items():
    _name = f"LocalDNSServer{_label}Tests"
    globals()[_name] = type(_name, (_LocalDNSServerMixin, TestCase), {
        "engine_factory": staticmethod(_factory), "__module__": __name__})

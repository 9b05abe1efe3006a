# -*- test-case-name: tests.cron.test_dns_checks -*-
"""
Track domains due for the hourly DNS re-check (never checked, or checked
over an hour ago, as Postal's C{CheckAllDNSScheduledTask}) and storing
the result.
"""

from __future__ import annotations

import attrs
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from postal.db import schema as s

__all__ = ["TrackDomainToCheck", "track_domains_to_check_txn", "record_track_domain_check_txn"]


@attrs.frozen
class TrackDomainToCheck:
    id: int
    full_name: str


def track_domains_to_check_txn(conn: Connection, checked_before: float) -> list[TrackDomainToCheck]:
    t = s.track_domains
    rows = conn.execute(select(t.c.id, t.c.name, s.domains.c.name.label("domain"))
                        .join(s.domains, s.domains.c.id == t.c.domain_id)
                        .where(or_(t.c.dns_checked_at.is_(None), t.c.dns_checked_at <= checked_before))
                        .order_by(t.c.id)).all()
    return [TrackDomainToCheck(r.id, f"{r.name}.{r.domain}") for r in rows]


def record_track_domain_check_txn(
    conn: Connection, track_domain_id: int, now: float, status: str, error: str | None,
) -> None:
    conn.execute(update(s.track_domains).where(s.track_domains.c.id == track_domain_id).values(
        dns_checked_at=now, dns_status=status, dns_error=error))

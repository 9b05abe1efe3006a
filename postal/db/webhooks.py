# -*- test-case-name: tests.db.test_webhooks -*-
"""
Webhooks and the webhook request queue.  L{enqueue_webhook_event_txn} is
called inside the transaction that records the event (a delivery, a click),
so an event and its webhook requests commit together.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import attrs
from sqlalchemy import exists, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from postal.db import schema as s
from postal.db._rows import inserted_id, to_record
from postal.errors import InvalidInput
from postal.tokens import new_uuid

__all__ = ["Webhook", "WEBHOOK_EVENTS", "ALL_EVENTS", "create_webhook_txn", "enqueue_webhook_event_txn"]

#: Events a webhook may subscribe to one by one (Postal's WebhookEvent::EVENTS).
WEBHOOK_EVENTS = (
    "MessageSent", "MessageDelayed", "MessageDeliveryFailed", "MessageHeld", "MessageBounced",
    "MessageLinkClicked", "MessageLoaded", "DomainDNSError",
)
#: Also sent, but only to webhooks with all events (as in Postal).
ALL_EVENTS = WEBHOOK_EVENTS + ("SendLimitApproaching", "SendLimitExceeded")


@attrs.frozen
class Webhook:
    id: int
    uuid: str
    server_id: int
    name: str | None
    url: str
    enabled: bool
    all_events: bool


def create_webhook_txn(
    conn: Connection, now: float, server_id: int, url: str, name: str | None,
    all_events: bool, events: Sequence[str],
) -> Webhook:
    if not (url.startswith("http://") or url.startswith("https://")):
        raise InvalidInput(f"webhook URL {url!r} must start with http:// or https://")
    if not all_events and not events:
        raise InvalidInput("choose --all-events or at least one --event")
    for event in events:
        if event not in WEBHOOK_EVENTS:
            raise InvalidInput(f"unknown webhook event {event!r} (one of {', '.join(WEBHOOK_EVENTS)})")
    values: dict[str, Any] = dict(uuid=new_uuid(), server_id=server_id, name=name, url=url, enabled=True,
                  all_events=all_events, sign=True, created_at=now)
    webhook_id = inserted_id(conn.execute(s.webhooks.insert().values(**values)))
    if not all_events:
        for event in dict.fromkeys(events):
            conn.execute(s.webhook_events.insert().values(webhook_id=webhook_id, event=event, created_at=now))
    return Webhook(id=webhook_id, uuid=values["uuid"], server_id=server_id, name=name, url=url,
                   enabled=True, all_events=all_events)


def webhooks_for_event_txn(conn: Connection, server_id: int, event: str) -> list[Webhook]:
    subscribed = exists().where(
        s.webhook_events.c.webhook_id == s.webhooks.c.id, s.webhook_events.c.event == event
    )
    condition: ColumnElement[bool] = s.webhooks.c.all_events.is_(True)
    if event in WEBHOOK_EVENTS:
        condition = or_(condition, subscribed)
    rows = conn.execute(select(s.webhooks).where(
        s.webhooks.c.server_id == server_id, s.webhooks.c.enabled.is_(True), condition,
    )).all()
    return [to_record(Webhook, r) for r in rows]


def enqueue_webhook_event_txn(
    conn: Connection, now: float, server_id: int, event: str, payload: Mapping[str, Any],
) -> int:
    """Queue one request per enabled webhook that wants C{event}; returns how many."""
    webhooks = webhooks_for_event_txn(conn, server_id, event)
    if not webhooks:
        return 0
    body = json.dumps(payload)
    conn.execute(s.webhook_requests.insert(), [
        dict(uuid=new_uuid(), server_id=server_id, webhook_id=w.id, url=w.url, event=event,
             payload=body, attempts=0, created_at=now)
        for w in webhooks
    ])
    return len(webhooks)

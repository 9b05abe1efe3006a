# -*- test-case-name: tests.web.test_api_v1 -*-
"""
The JSON shapes of Postal's API answers (api-contract.md section 3.2-3.5):
send results, a message with its expansions, deliveries.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from postal.outgoing.inspection import parse_message, ruby_base64
from postal.outgoing.values import SendResult

if TYPE_CHECKING:  # records the logic layer hands over; no storage code runs here
    from postal.db.api import MessageView
    from postal.db.messages import Delivery

__all__ = ["send_result_data", "message_data", "deliveries_data"]


def send_result_data(result: SendResult) -> dict[str, Any]:
    """Messages keyed by bare address; a repeated address keeps its last message."""
    return {
        "message_id": result.message_id,
        "messages": {m.address: {"id": m.id, "token": m.token} for m in result.messages},
    }


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _status(view: MessageView) -> dict[str, Any]:
    m = view.message
    return {"status": m.status, "last_delivery_attempt": _float(m.last_delivery_attempt),
            "held": bool(m.held), "hold_expiry": _float(m.hold_expiry)}


def _details(view: MessageView) -> dict[str, Any]:
    m = view.message
    return {
        "rcpt_to": m.rcpt_to, "mail_from": m.mail_from, "subject": m.subject, "message_id": m.message_id,
        "timestamp": float(m.timestamp), "direction": m.scope,
        "size": None if m.size is None else str(m.size), "bounce": bool(m.bounce),
        "bounce_for_id": int(m.bounce_for_id or 0), "tag": m.tag,
        "received_with_ssl": None if m.received_with_ssl is None else bool(m.received_with_ssl),
    }


def _inspection(view: MessageView) -> dict[str, Any]:
    m = view.message
    return {"inspected": bool(m.inspected), "spam": bool(m.spam), "spam_score": float(m.spam_score or 0),
            "threat": bool(m.threat), "threat_details": m.threat_details}


def _activity(view: MessageView) -> dict[str, Any]:
    return {
        "loads": [{"ip_address": l.ip_address, "user_agent": l.user_agent, "timestamp": _iso(l.timestamp)}
                  for l in view.loads],
        "clicks": [{"url": c.url, "ip_address": c.ip_address, "user_agent": c.user_agent,
                    "timestamp": _iso(c.timestamp)} for c in view.clicks],
    }


def message_data(view: MessageView, expansions: frozenset[str]) -> dict[str, Any]:
    """C{{id, token}} plus each expansion asked for, in Postal's order."""
    data: dict[str, Any] = {"id": view.message.id, "token": view.message.token}
    for name, build in (("status", _status), ("details", _details), ("inspection", _inspection)):
        if name in expansions:
            data[name] = build(view)
    raw = view.raw
    parsed = parse_message(raw) if raw is not None and expansions & {
        "plain_body", "html_body", "attachments", "headers"} else None
    if "plain_body" in expansions:
        data["plain_body"] = parsed.plain_body if parsed else None
    if "html_body" in expansions:
        data["html_body"] = parsed.html_body if parsed else None
    if "attachments" in expansions:
        data["attachments"] = [
            {"filename": a.filename, "content_type": a.content_type, "data": ruby_base64(a.data),
             "size": len(a.data), "hash": a.sha1}
            for a in (parsed.attachments if parsed else ())
        ]
    if "headers" in expansions:
        data["headers"] = parsed.headers if parsed else {}
    if "raw_message" in expansions:
        data["raw_message"] = ruby_base64(raw) if raw is not None else None
    if "activity_entries" in expansions:
        data["activity_entries"] = _activity(view)
    return data


def deliveries_data(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    return [
        {"id": d.id, "status": d.status, "details": d.details,
         "output": None if d.output is None else d.output.strip(), "sent_with_ssl": bool(d.sent_with_ssl),
         "log_id": d.log_id, "time": _float(d.time), "timestamp": float(d.timestamp)}
        for d in deliveries
    ]

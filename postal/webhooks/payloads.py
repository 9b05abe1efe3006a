# -*- test-case-name: tests.webhooks.test_payloads -*-
"""
Webhook payloads exactly as Postal builds them (api-contract.md section 3.6,
postal-behaviour.md section 8.1), and the request body around them.  The
builders take records by their attributes, so any layer's record works.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = [
    "message_hash", "status_payload", "bounced_payload", "link_clicked_payload", "loaded_payload",
    "server_hash", "dns_error_payload", "send_limit_payload", "webhook_body", "truncate",
    "EVENT_FOR_DELIVERY_STATUS",
]

#: Delivery statuses that fire a webhook, and the event each fires.
EVENT_FOR_DELIVERY_STATUS = {
    "Sent": "MessageSent", "SoftFail": "MessageDelayed", "HardFail": "MessageDeliveryFailed",
    "Held": "MessageHeld",
}


class _Message(Protocol):
    id: int
    token: str
    scope: str
    message_id: str | None
    rcpt_to: str | None
    mail_from: str | None
    subject: str | None
    timestamp: float
    inspected: bool
    spam: bool
    tag: str | None


def truncate(text: str, length: int) -> str:
    """ActiveSupport's C{truncate}: at most C{length} characters, ending C{...} when cut."""
    if len(text) <= length:
        return text
    return text[: length - 3] + "..."


def message_hash(message: _Message) -> dict[str, Any]:
    """Postal's C{Message#webhook_hash}."""
    if not message.inspected:
        spam_status = "NotChecked"
    else:
        spam_status = "Spam" if message.spam else "NotSpam"
    return {
        "id": message.id, "token": message.token, "direction": message.scope,
        "message_id": message.message_id, "to": message.rcpt_to, "from": message.mail_from,
        "subject": message.subject, "timestamp": float(message.timestamp),
        "spam_status": spam_status, "tag": message.tag,
    }


def status_payload(
    message: _Message, status: str, details: str | None, output: str | bytes | None,
    sent_with_ssl: bool, timestamp: float, time: float | None,
) -> dict[str, Any]:
    """MessageSent/Delayed/DeliveryFailed/Held: Postal's C{Delivery#webhook_hash}."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else (output or "")
    return {
        "message": message_hash(message), "status": status, "details": details,
        "output": truncate(text, 512), "sent_with_ssl": bool(sent_with_ssl),
        "timestamp": float(timestamp), "time": None if time is None else float(time),
    }


def bounced_payload(original: _Message, bounce: _Message) -> dict[str, Any]:
    return {"original_message": message_hash(original), "bounce": message_hash(bounce)}


def link_clicked_payload(
    message: _Message, url: str, link_token: str, ip_address: str | None, user_agent: str | None,
) -> dict[str, Any]:
    return {"message": message_hash(message), "url": url, "token": link_token,
            "ip_address": ip_address, "user_agent": user_agent}


def loaded_payload(message: _Message, ip_address: str | None, user_agent: str | None) -> dict[str, Any]:
    return {"message": message_hash(message), "ip_address": ip_address, "user_agent": user_agent}


def server_hash(uuid: str, name: str, permalink: str, organization_permalink: str) -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "permalink": permalink, "organization": organization_permalink}


def dns_error_payload(server: dict[str, Any], domain: Any) -> dict[str, Any]:
    """DomainDNSError: C{domain} has Postal's DNS check columns."""
    return {
        "server": server, "domain": domain.name, "uuid": domain.uuid,
        "dns_checked_at": None if domain.dns_checked_at is None else float(domain.dns_checked_at),
        "spf_status": domain.spf_status, "spf_error": domain.spf_error,
        "dkim_status": domain.dkim_status, "dkim_error": domain.dkim_error,
        "mx_status": domain.mx_status, "mx_error": domain.mx_error,
        "return_path_status": domain.return_path_status, "return_path_error": domain.return_path_error,
    }


def send_limit_payload(server: dict[str, Any], volume: int, limit: int) -> dict[str, Any]:
    """SendLimitApproaching / SendLimitExceeded."""
    return {"server": server, "volume": volume, "limit": limit}


def webhook_body(event: str, timestamp: float, payload_json: str, uuid: str) -> bytes:
    """
    The exact bytes posted: C{{"event","timestamp","payload","uuid"}} in that
    order, compact as Ruby's C{to_json}; the stored payload keeps its key order.
    """
    payload = json.loads(payload_json)
    body = {"event": event, "timestamp": float(timestamp), "payload": payload, "uuid": uuid}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

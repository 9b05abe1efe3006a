# -*- test-case-name: tests.delivery.test_worker -*-
"""
The outgoing pipeline's decisions, in Postal's order (postal-behaviour.md
section 3.2): everything before the send is a pure function of the claimed
L{WorkItem}, so it is tested without sockets; the send's result is then
turned into the L{DeliveryRecord} that is stored.
"""

from __future__ import annotations

from typing import Union

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from postal.delivery.dkim import DKIMKey, dkim_signature_headers, load_ed25519_key
from postal.delivery.sender import SendResult
from postal.delivery.values import DeliveryRecord, WorkItem
from postal.keys import load_private_key

__all__ = ["Policy", "Drop", "SendPlan", "Decision", "decide", "record_for_result", "retry_delay", "error_record", "KeyCache"]

INTERNAL_ERROR = ("An internal error occurred while sending this message. "
                  "This message will be retried automatically.")


@attrs.frozen
class Policy:
    """The configuration the pipeline decides with."""

    return_path_domain: str
    custom_return_path_prefix: str = "psrp"
    dkim_identifier: str = "postal"
    max_attempts: int = 18
    hold_expiry_days: int = 7
    suppression_days: int = 30
    use_resent_sender: bool = True
    retry_base: float = 300.0
    retry_factor: float = 1.3


def retry_delay(policy: Policy, attempts: int) -> float:
    """Postal's backoff: 1.3^attempts x 5 minutes (attempts before this failure)."""
    return float(policy.retry_base * policy.retry_factor ** attempts)


@attrs.frozen
class Drop:
    """The message row is gone: delete the queue row, record nothing."""

    queue_id: int


@attrs.frozen
class SendPlan:
    """Everything needed to send, and the record fields decided before the send."""

    item: WorkItem
    domain: str
    mail_from: str
    rcpt_to: str
    data: bytes
    prepended_headers: bytes | None
    send_limit_state: str | None


Decision = Union[Drop, DeliveryRecord, SendPlan]


@attrs.define
class KeyCache:
    """Parsed private keys by PEM text (parsing RSA keys costs more than signing)."""

    signing_key: rsa.RSAPrivateKey | None = None
    _keys: dict[str, object] = attrs.field(factory=dict)

    def rsa(self, pem: str) -> rsa.RSAPrivateKey:
        key = self._keys.get(pem)
        if key is None:
            key = self._keys[pem] = load_private_key(pem)
        return key  # type: ignore[return-value]

    def ed25519(self, text: str) -> object:
        key = self._keys.get(text)
        if key is None:
            key = self._keys[text] = load_ed25519_key(text)
        return key


def _record(item: WorkItem, holder: str, status: str, details: str, **kw: object) -> DeliveryRecord:
    assert item.message is not None
    return DeliveryRecord(queue_id=item.queued.id, message_id=item.message.id, server_id=item.queued.server_id,
                          status=status, details=details, holder=holder, **kw)  # type: ignore[arg-type]


def _dkim_keys(item: WorkItem, policy: Policy, keys: KeyCache) -> list[DKIMKey]:
    domain = item.domain
    if domain is not None and domain.dkim_status == "OK":
        selector = f"{policy.dkim_identifier}-{domain.dkim_identifier_string}"
        chosen = [DKIMKey(domain.name, selector, keys.rsa(domain.dkim_private_key))]
        if domain.dkim_ed25519_private_key:
            chosen.append(DKIMKey(domain.name, f"{selector}-ed25519",
                                  keys.ed25519(domain.dkim_ed25519_private_key)))  # type: ignore[arg-type]
        return chosen
    if keys.signing_key is None:
        return []
    return [DKIMKey(policy.return_path_domain, policy.dkim_identifier, keys.signing_key)]


def _prepended(item: WorkItem, policy: Policy, keys: KeyCache, now: float) -> tuple[bytes, bytes | None]:
    """The headers to prepend (DKIM + X-Postal-MsgID), and whether they are new (to store)."""
    if item.prepended_headers is not None:
        return item.prepended_headers, None
    assert item.message is not None and item.raw is not None
    signatures = dkim_signature_headers(item.raw, _dkim_keys(item, policy, keys), int(now))
    headers = signatures + f"X-Postal-MsgID: {item.message.token}\r\n".encode("ascii")
    return headers, headers


def _return_path(item: WorkItem, policy: Policy) -> str:
    assert item.message is not None and item.server is not None and item.domain is not None
    if item.message.bounce:
        return ""
    if item.domain.return_path_status == "OK":
        return f"{item.server.token}@{policy.custom_return_path_prefix}.{item.domain.name}"
    return f"{item.server.token}@{policy.return_path_domain}"


def _send_limit_state(item: WorkItem) -> str | None:
    assert item.server is not None
    limit = item.server.send_limit
    if limit is None:
        return None
    if item.live_outgoing >= limit:
        return "exceeded"
    if item.live_outgoing >= limit * 0.9:
        return "approaching"
    return "clear"


def _before_send(item: WorkItem, policy: Policy, holder: str) -> DeliveryRecord | None:
    """Postal's checks up to the suppression list, or None to carry on."""
    message, server, queued = item.message, item.server, item.queued
    assert message is not None
    if server is None or server.suspended:
        return _record(item, holder, "Held", "Mail server has been suspended. No e-mails can be processed "
                       "at present. Contact support for assistance.", hold_expiry_days=policy.hold_expiry_days)
    if queued.attempts >= policy.max_attempts:
        return _record(item, holder, "HardFail",
                       f"Maximum number of delivery attempts ({policy.max_attempts}) has been reached.",
                       suppress_reason="too many soft fails", suppress_days=policy.suppression_days)
    if item.raw is None:
        return _record(item, holder, "HardFail", "Raw message has been removed. Cannot send message.")
    if message.scope != "outgoing":
        return _record(item, holder, "HardFail", f"Scope {message.scope} is not valid")
    if item.domain is None:
        return _record(item, holder, "HardFail", "Message's domain no longer exist")
    if not message.rcpt_to:
        return _record(item, holder, "HardFail", "Message doesn't have an RCPT to")
    if item.credential is not None and item.credential.hold and not queued.manual:
        return _record(item, holder, "Held", "Credential is configured to hold all messages authenticated by it.",
                       hold_expiry_days=policy.hold_expiry_days)
    if item.suppression is not None and not queued.manual:
        return _record(item, holder, "Held", f"Recipient ({message.rcpt_to}) is on the suppression list "
                       f"(reason: {item.suppression.reason})", hold_expiry_days=policy.hold_expiry_days)
    return None


def decide(item: WorkItem, policy: Policy, keys: KeyCache, holder: str, now: float) -> Decision:
    """What to do with one claimed message, up to (not including) the send."""
    if item.message is None:
        return Drop(item.queued.id)
    early = _before_send(item, policy, holder)
    if early is not None:
        return early
    message, server = item.message, item.server
    assert server is not None and message.rcpt_to is not None
    prepended, new_prepended = _prepended(item, policy, keys, now)
    limit_state = _send_limit_state(item)
    if limit_state == "exceeded":
        return _record(item, holder, "Held", f"Message held because send limit ({server.send_limit}) has been "
                       "reached.", hold_expiry_days=policy.hold_expiry_days, send_limit_state=limit_state,
                       prepended_headers=new_prepended)
    if server.mode == "Development" and not item.queued.manual:
        return _record(item, holder, "Held", "Server is in development mode.", count_live_outgoing=True,
                       hold_expiry_days=policy.hold_expiry_days, send_limit_state=limit_state,
                       prepended_headers=new_prepended)
    mail_from = _return_path(item, policy)
    resent = f"Resent-Sender: {mail_from}\r\n".encode() if policy.use_resent_sender else b""
    assert item.raw is not None
    return SendPlan(item=item, domain=message.rcpt_to.rpartition("@")[2].lower(), mail_from=mail_from,
                    rcpt_to=message.rcpt_to, data=resent + prepended + item.raw,
                    prepended_headers=new_prepended, send_limit_state=limit_state)


def record_for_result(plan: SendPlan, result: SendResult, policy: Policy, holder: str, now: float,
                      elapsed: float) -> DeliveryRecord:
    """The stored outcome of a send: status, retry, suppression changes (steps 14-17)."""
    retry_at = None
    if result.retry:
        delay = result.retry_in if result.retry_in is not None else retry_delay(policy, plan.item.queued.attempts)
        retry_at = now + delay
    return _record(
        plan.item, holder, result.status, result.details, output=result.output,
        sent_with_ssl=result.sent_with_ssl, log_id=result.log_id, time=round(elapsed, 2), retry_at=retry_at,
        count_live_outgoing=True, send_limit_state=plan.send_limit_state,
        prepended_headers=plan.prepended_headers, suppress_days=policy.suppression_days,
        unsuppress=result.status == "Sent", suppress_on_repeated_hard_fail=result.status == "HardFail",
        hold_expiry_days=policy.hold_expiry_days,
    )


def error_record(item: WorkItem, policy: Policy, holder: str, now: float, error: str) -> DeliveryRecord:
    """Postal's C{Error} delivery after an internal exception: retried like a soft failure."""
    return _record(item, holder, "Error", INTERNAL_ERROR, output=error[:512],
                   retry_at=now + retry_delay(policy, item.queued.attempts))

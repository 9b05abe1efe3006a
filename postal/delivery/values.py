# -*- test-case-name: tests.delivery.test_worker -*-
"""
The values the worker and its store exchange: a claimed L{WorkItem}, the
L{DeliveryRecord} stored for each outcome, and what a requeue pass reports.
They belong to the delivery logic (the store implements
L{postal.delivery.interfaces}); the account records they carry are
postal.db's, named here only for type checking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # records only
    from postal.db.credentials import Credential
    from postal.db.domains import Domain
    from postal.db.messages import Message
    from postal.db.queue import QueuedMessage
    from postal.db.servers import Server
    from postal.db.suppressions import Suppression

__all__ = ["WorkItem", "DeliveryRecord", "ClaimRequest", "Recorded", "QueueStats", "RequeueResult"]


@attrs.frozen
class WorkItem:
    """One claimed queue row and what the pipeline needs to decide about it."""

    queued: QueuedMessage
    message: Message | None
    server: Server | None
    domain: Domain | None = None
    credential: Credential | None = None
    raw: bytes | None = None
    prepended_headers: bytes | None = None
    suppression: Suppression | None = None
    live_outgoing: int = 0


@attrs.frozen
class DeliveryRecord:
    """The outcome of processing one queued message, as it will be stored."""

    queue_id: int
    message_id: int
    server_id: int
    status: str
    details: str
    holder: str
    output: str | None = None
    sent_with_ssl: bool = False
    log_id: str | None = None
    time: float | None = None
    #: None: remove the queue row; a time: retry then (attempts + 1).
    retry_at: float | None = None
    hold_expiry_days: int = 7
    count_live_outgoing: bool = False
    #: "approaching", "exceeded", "clear" or None (no send-limit change).
    send_limit_state: str | None = None
    prepended_headers: bytes | None = None
    #: Suppression list changes: add with a reason, or remove on success.
    suppress_reason: str | None = None
    suppress_days: int = 30
    unsuppress: bool = False
    #: Postal's rule: a hard failure after another in the last day suppresses.
    suppress_on_repeated_hard_fail: bool = False


@attrs.frozen
class ClaimRequest:
    """What to claim next, asked for in the same transaction as outcomes are recorded."""

    holder: str
    lease_seconds: float
    limit: int
    skip_batch_keys: tuple[str, ...] = ()
    batch_prefix: str | None = None


@attrs.frozen
class Recorded:
    """What recording a batch of outcomes (and claiming, if asked) did."""

    #: Delivery row ids in the records' order (None where the message was gone).
    delivery_ids: tuple[int | None, ...]
    #: Webhook requests queued for these outcomes: the webhook sender has work.
    webhooks_queued: int = 0
    #: The rows claimed by the L{ClaimRequest}, if there was one.
    claimed: tuple[WorkItem, ...] = ()


@attrs.frozen
class QueueStats:
    """What the requeuer exports as metrics."""

    size: int
    ready: int
    deferred: int
    locked: int
    oldest_created_at: float | None


@attrs.frozen
class RequeueResult:
    expired_leases: int
    due_retries: int

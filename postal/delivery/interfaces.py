# -*- test-case-name: tests.delivery.test_worker -*-
"""
The storage interfaces the delivery logic talks to.  The SQL
implementations are L{postal.db.delivery_store.SQLDeliveryQueue} and
L{postal.db.delivery_store.SQLQueueMaintenance}; tests use them over a
synchronous pool.
"""

from __future__ import annotations

from typing import Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

from postal.delivery.values import ClaimRequest, DeliveryRecord, QueueStats, Recorded, RequeueResult, WorkItem

__all__ = ["IDeliveryQueue", "IQueueMaintenance"]


class IDeliveryQueue(Interface):
    """The outgoing queue as one worker sees it: claims under a lease, and outcomes."""

    def claim(now: float, holder: str, lease_seconds: float, limit: int,
              skip_batch_keys: Sequence[str], batch_prefix: str | None) -> Deferred[list[WorkItem]]:
        """
        Lease one destination's batch (up to C{limit} rows, none whose batch
        key is in C{skip_batch_keys}) to C{holder}, with everything the
        pipeline decides on, in one transaction.
        """

    def record(now: float, records: Sequence[DeliveryRecord],
               claim: ClaimRequest | None = None) -> Deferred[Recorded]:
        """
        Store outcomes (delivery rows, message status, queue update,
        statistics, suppression changes, webhook requests) in one
        transaction; fires after the commit.  With C{claim}, the same
        transaction then claims as L{claim} would: one commit instead of two.
        """

    def release(holder: str, queue_ids: Sequence[int]) -> Deferred[int]:
        """Give claimed rows back untouched."""

    def renew(now: float, holder: str, queue_ids: Sequence[int], lease_seconds: float) -> Deferred[int]:
        """Extend the leases C{holder} still has; fires with how many it still has."""


class IQueueMaintenance(Interface):
    """What the requeuer does to the queue."""

    def requeue(now: float) -> Deferred[tuple[RequeueResult, QueueStats]]:
        """
        Return due retries and expired leases to the ready queue (waking
        listening workers), then measure the queue, in one transaction.
        """

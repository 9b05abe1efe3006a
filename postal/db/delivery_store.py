# -*- test-case-name: tests.delivery.test_worker -*-
"""
The SQL side of delivery: L{SQLDeliveryQueue} (the worker's claims and
outcomes) and L{SQLQueueMaintenance} (the requeuer's pass), each a thin
adapter running the C{*_txn} functions of L{postal.db.deliveries} and
L{postal.db.queue} on the database pool.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from twisted.internet.defer import Deferred
from zope.interface import implementer

from postal.db.deliveries import claim_work_txn, record_and_claim_txn
from postal.db.pool import TransactionPool
from postal.db.queue import release_txn, renew_leases_txn, requeue_and_measure_txn
from postal.delivery.interfaces import IDeliveryQueue, IQueueMaintenance
from postal.delivery.values import ClaimRequest, DeliveryRecord, QueueStats, Recorded, RequeueResult, WorkItem

__all__ = ["SQLDeliveryQueue", "SQLQueueMaintenance"]


@implementer(IDeliveryQueue)
@attrs.define(eq=False)
class SQLDeliveryQueue:
    """L{IDeliveryQueue} over the database pool."""

    _pool: TransactionPool

    def claim(self, now: float, holder: str, lease_seconds: float, limit: int,
              skip_batch_keys: Sequence[str], batch_prefix: str | None) -> Deferred[list[WorkItem]]:
        return self._pool.run_in_transaction("claim_work", claim_work_txn, now, holder, lease_seconds, limit,
                                             skip_batch_keys, batch_prefix)

    def record(self, now: float, records: Sequence[DeliveryRecord],
               claim: ClaimRequest | None = None) -> Deferred[Recorded]:
        return self._pool.run_in_transaction("record_deliveries", record_and_claim_txn, now, records, claim)

    def release(self, holder: str, queue_ids: Sequence[int]) -> Deferred[int]:
        return self._pool.run_in_transaction("release_claims", release_txn, holder, queue_ids)

    def renew(self, now: float, holder: str, queue_ids: Sequence[int], lease_seconds: float) -> Deferred[int]:
        return self._pool.run_in_transaction("renew_leases", renew_leases_txn, now, holder, queue_ids,
                                             lease_seconds)


@implementer(IQueueMaintenance)
@attrs.define(eq=False)
class SQLQueueMaintenance:
    """L{IQueueMaintenance} over the database pool."""

    _pool: TransactionPool

    def requeue(self, now: float) -> Deferred[tuple[RequeueResult, QueueStats]]:
        return self._pool.run_in_transaction("requeue", requeue_and_measure_txn, now)

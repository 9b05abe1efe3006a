# -*- test-case-name: tests.delivery.test_worker -*-
"""
The worker's claim loop: claim a destination's batch with a lease, decide
each message (L{postal.delivery.outgoing}), send over up to
C{per_destination} reused connections, and record outcomes with group
commit.  At most C{concurrency} messages are held at once; leases are
renewed while held; on stop, unstarted messages are released and started
ones finish.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Protocol, Sequence

import attrs
from prometheus_client import Counter, Gauge
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from postal.delivery.interfaces import IDeliveryQueue
from postal.delivery.outgoing import (
    Decision, Drop, KeyCache, Policy, SendPlan, decide, error_record, record_for_result,
)
from postal.delivery.sender import SendResult
from postal.delivery.values import ClaimRequest, DeliveryRecord, WorkItem

__all__ = ["DeliveryWorker", "IMessageSender"]

log = Logger()

DELIVERIES = Counter("postal_worker_deliveries_total", "Delivery outcomes recorded.", ["status"])
IN_FLIGHT = Gauge("postal_worker_in_flight", "Messages claimed and not yet recorded.")
ERRORS = Counter("postal_worker_errors_total", "Internal errors in the worker loop.")


def _inline(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return succeed(fn(*args))


class IMessageSender(Protocol):
    async def send(self, domain: str, mail_from: str, rcpt_to: str, data: bytes) -> SendResult: ...

    def close_idle(self) -> Deferred[list[None]]: ...


@attrs.define(eq=False)
class _Destination:
    key: str
    plans: deque[SendPlan] = attrs.field(factory=deque)
    lanes: int = 0


@attrs.define(eq=False)
class DeliveryWorker(Service):
    """A Service claiming and delivering outgoing messages."""

    _clock: IReactorTime
    _queue: IDeliveryQueue
    _sender: IMessageSender
    _policy: Policy
    _keys: KeyCache
    _holder: str
    _concurrency: int = 100
    _per_destination: int = 10
    _lease_seconds: float = 300.0
    _poll_interval: float = 5.0
    _batch_size: int = 100
    _batch_prefix: str = "outgoing-"
    #: Runs the batch's decisions (DKIM signing): inline by default, a thread in production.
    _run_in_thread: Callable[..., Deferred[Any]] = attrs.field(default=_inline)
    #: Called after a commit of outcomes that queued webhook requests: wakes the webhook sender.
    _after_record: Callable[[], None] | None = None
    _held: dict[int, WorkItem] = attrs.field(factory=dict)
    _destinations: dict[str, _Destination] = attrs.field(factory=dict)
    _pending: list[tuple[DeliveryRecord, int]] = attrs.field(factory=list)
    _flushing: bool = False
    _claiming: bool = False
    _again: bool = False
    _stopping: bool = False
    _poll: IDelayedCall | None = None
    _renewer: LoopingCall | None = None
    _idle_waiters: list[Deferred[None]] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.name = "delivery-worker"

    # ------------------------------------------------------------ lifecycle

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._stopping = False
        self._renewer = LoopingCall(self._renew)
        self._renewer.clock = self._clock
        self._renewer.start(self._lease_seconds / 3, now=False).addErrback(
            lambda f: log.failure("Lease renewal loop stopped", f))
        self.wake()

    def stopService(self) -> Deferred[None]:  # type: ignore[override]
        super().stopService()  # type: ignore[no-untyped-call]
        self._stopping = True
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        if self._renewer is not None and self._renewer.running:
            self._renewer.stop()
        return Deferred.fromCoroutine(self._drain())

    async def _drain(self) -> None:
        unstarted = [plan.item.queued.id for d in self._destinations.values() for plan in d.plans]
        for destination in self._destinations.values():
            destination.plans.clear()
        for queue_id in unstarted:
            self._held.pop(queue_id, None)
        if unstarted:
            await self._release(unstarted)
            log.info("Released {count} claimed messages on shutdown", count=len(unstarted))
        if self._held or self._pending or self._claiming:
            # Started sends finish and are recorded; a claim in flight is released when it lands.
            d: Deferred[None] = Deferred()
            self._idle_waiters.append(d)
            await d
        IN_FLIGHT.set(0)
        await self._sender.close_idle()

    def _check_idle(self) -> None:
        IN_FLIGHT.set(len(self._held))
        if not self._held and not self._pending and not self._claiming:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    # ------------------------------------------------------------ claiming

    def wake(self) -> None:
        """New work may be ready: claim now (the L{IWakeup} subscriber)."""
        if not self.running or self._stopping:
            return
        if self._claiming:
            self._again = True
            return
        Deferred.fromCoroutine(self._fill()).addErrback(self._loop_failed)

    def _loop_failed(self, failure: Any) -> None:
        ERRORS.inc()
        log.failure("Claim loop failed", failure)
        self._schedule_poll()

    def _schedule_poll(self) -> None:
        if self._stopping:
            return
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = self._clock.callLater(self._poll_interval, self.wake)

    def _saturated(self) -> list[str]:
        """
        Destinations not to claim for: every connection busy and a round of
        messages waiting for each.  (Claiming on for a destination with
        only busy connections keeps them fed; the bound leaves room for others.)
        """
        return [k for k, d in self._destinations.items()
                if d.lanes >= self._per_destination and len(d.plans) >= self._per_destination]

    async def _fill(self) -> None:
        self._claiming = True
        try:
            while not self._stopping:
                self._again = False
                if self._flushing:
                    break  # the transaction recording outcomes will claim (L{_claim_with_record})
                free = self._room(0)
                if not free:
                    break
                items = await self._queue.claim(self._clock.seconds(), self._holder, self._lease_seconds,
                                                min(self._batch_size, free), self._saturated(), self._batch_prefix)
                if not items:
                    if not self._again:
                        break
                    continue
                await self._start(items)
        finally:
            self._claiming = False
            self._check_idle()
        self._schedule_poll()

    def _room(self, freed: int) -> int:
        """
        How many to claim once C{freed} held messages are done: 0 while there
        is no room, or (with queued sends still waiting) too little for a
        worthwhile claim.
        """
        free = self._concurrency - len(self._held) + freed
        if free <= 0 or (free < self._min_claim() and self._plans_waiting()):
            return 0
        return free

    def _min_claim(self) -> int:
        """Claims smaller than this wait while lanes still have work: fewer, larger claim transactions."""
        return max(1, min(self._batch_size, self._concurrency) // 4)

    def _plans_waiting(self) -> bool:
        return any(destination.plans for destination in self._destinations.values())

    def _decide_all(self, items: Sequence[WorkItem], now: float) -> list[Decision]:
        """Decide (and DKIM-sign) a batch; may run on a thread: it touches no shared state but keys."""
        decisions: list[Decision] = []
        for item in items:
            try:
                decisions.append(decide(item, self._policy, self._keys, self._holder, now))
            except Exception as e:
                ERRORS.inc()
                log.failure("Deciding message {message_id} failed", message_id=item.queued.message_id)
                decisions.append(error_record(item, self._policy, self._holder, now, repr(e)))
        return decisions

    async def _start(self, items: Sequence[WorkItem]) -> None:
        for item in items:
            self._held[item.queued.id] = item
        IN_FLIGHT.set(len(self._held))
        decisions = await self._run_in_thread(self._decide_all, items, self._clock.seconds())
        unstarted: list[int] = []
        for item, decision in zip(items, decisions):
            if isinstance(decision, Drop):
                self._add_record(_drop_record(item, self._holder), item.queued.id)
            elif isinstance(decision, DeliveryRecord):
                self._add_record(decision, item.queued.id)
            elif self._stopping:
                unstarted.append(item.queued.id)
            else:
                key = item.queued.batch_key or decision.domain
                self._destinations.setdefault(key, _Destination(key)).plans.append(decision)
        if unstarted:
            await self._release(unstarted)
            for queue_id in unstarted:
                self._held.pop(queue_id, None)
            self._check_idle()
        for destination in list(self._destinations.values()):
            wanted = min(self._per_destination, destination.lanes + len(destination.plans))
            for _ in range(wanted - destination.lanes):
                destination.lanes += 1
                Deferred.fromCoroutine(self._lane(destination)).addErrback(self._loop_failed)

    # ------------------------------------------------------------ sending

    async def _lane(self, destination: _Destination) -> None:
        """One connection's worth of work: send the destination's plans one after another."""
        try:
            while destination.plans and not self._stopping:
                plan = destination.plans.popleft()
                await self._send(plan)
        finally:
            destination.lanes -= 1
            if destination.lanes == 0 and not destination.plans:
                self._destinations.pop(destination.key, None)
            if not self._stopping:
                self.wake()

    async def _send(self, plan: SendPlan) -> None:
        started = self._clock.seconds()
        try:
            result = await self._sender.send(plan.domain, plan.mail_from, plan.rcpt_to, plan.data)
            now = self._clock.seconds()
            record = record_for_result(plan, result, self._policy, self._holder, now, now - started)
        except Exception as e:
            ERRORS.inc()
            log.failure("Sending message {message_id} failed", message_id=plan.item.queued.message_id)
            record = error_record(plan.item, self._policy, self._holder, self._clock.seconds(), repr(e))
        self._add_record(record, plan.item.queued.id)

    # ------------------------------------------------------------ recording

    def _add_record(self, record: DeliveryRecord, queue_id: int) -> None:
        self._pending.append((record, queue_id))
        if not self._flushing:
            Deferred.fromCoroutine(self._flush()).addErrback(self._loop_failed)

    async def _flush(self) -> None:
        """
        Group commit: everything pending goes in one transaction; repeat
        while more arrive.  When the freed places make room for a claim
        and no claim is running, the same transaction makes it.
        """
        self._flushing = True
        claimed = False
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                claim = self._claim_with_record(len(batch))
                try:
                    recorded = await self._queue.record(self._clock.seconds(), [r for r, _ in batch], claim)
                except Exception:
                    if claim is not None:
                        self._claiming = False
                    ERRORS.inc()
                    log.failure("Recording {count} deliveries failed; retrying", count=len(batch))
                    self._pending = batch + self._pending
                    await _sleep(self._clock, 1.0)
                    continue
                if claim is not None:
                    # First: these rows are leased to us and must be held (and renewed) at once.
                    claimed = True
                    Deferred.fromCoroutine(self._start_claimed(recorded.claimed, claim.limit)).addErrback(
                        self._loop_failed)
                for record, queue_id in batch:
                    DELIVERIES.labels(record.status).inc()
                    self._held.pop(queue_id, None)
                if recorded.webhooks_queued and self._after_record is not None:
                    try:
                        self._after_record()
                    except Exception:
                        ERRORS.inc()
                        log.failure("Waking the webhook sender failed")
        finally:
            self._flushing = False
        self._check_idle()
        if not (claimed and self._claiming):  # else L{_start_claimed}, still running, claims on
            self.wake()

    def _claim_with_record(self, freed: int) -> ClaimRequest | None:
        """
        The claim to make in the transaction recording C{freed} outcomes, on
        the terms L{_fill} claims on; None when a claim is running or there
        is no room.  Marks the claim as running.
        """
        if self._claiming or self._stopping:
            return None
        free = self._room(freed)
        if not free:
            return None
        self._claiming = True
        return ClaimRequest(self._holder, self._lease_seconds, min(self._batch_size, free),
                            tuple(self._saturated()), self._batch_prefix)

    async def _start_claimed(self, items: Sequence[WorkItem], limit: int) -> None:
        """Start what a record transaction claimed, then claim on if the queue may hold more."""
        try:
            if items:
                await self._start(items)
        finally:
            self._claiming = False
            self._check_idle()
        if self._again or len(items) >= limit:
            self.wake()
        else:
            self._schedule_poll()

    async def _renew(self) -> None:
        """Extend the leases of everything held; a failure is logged and the next round tries again."""
        ids = list(self._held)
        if not ids:
            return
        try:
            await self._queue.renew(self._clock.seconds(), self._holder, ids, self._lease_seconds)
        except Exception:
            ERRORS.inc()
            log.failure("Renewing {count} leases failed; trying again next round", count=len(ids))

    async def _release(self, queue_ids: list[int]) -> None:
        """Give rows back; if that fails their leases run out and the requeuer returns them."""
        try:
            await self._queue.release(self._holder, queue_ids)
        except Exception:
            ERRORS.inc()
            log.failure("Releasing {count} claimed messages failed; their leases will expire",
                        count=len(queue_ids))


def _drop_record(item: WorkItem, holder: str) -> DeliveryRecord:
    """A record whose message is gone: storing it only deletes the queue row."""
    return DeliveryRecord(queue_id=item.queued.id, message_id=item.queued.message_id,
                          server_id=item.queued.server_id, status="Error", details="", holder=holder)


def _sleep(clock: IReactorTime, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    clock.callLater(seconds, d.callback, None)
    return d


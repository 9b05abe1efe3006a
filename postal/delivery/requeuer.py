# -*- test-case-name: tests.delivery.test_tap -*-
"""
The requeuer owns queue time: while this process holds the C{requeuer}
lease it returns retries that came due and the rows of dead workers
(expired leases) to the ready queue, wakes the workers, and exports the
queue's size and age.  It never deletes a queued message.
"""

from __future__ import annotations

import attrs
from prometheus_client import Gauge
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from postal.delivery.interfaces import IQueueMaintenance
from postal.delivery.wakeup import IWakeup

__all__ = ["Requeuer"]

log = Logger()

QUEUE_SIZE = Gauge("postal_queue_size", "Rows in the message queue.")
QUEUE_READY = Gauge("postal_queue_ready", "Queue rows ready to be claimed.")
QUEUE_DEFERRED = Gauge("postal_queue_deferred", "Queue rows waiting for their retry time.")
QUEUE_LOCKED = Gauge("postal_queue_locked", "Queue rows claimed by a worker.")
QUEUE_OLDEST_AGE = Gauge("postal_queue_oldest_age_seconds", "Age of the oldest queued row.")
QUEUE_RETURNED = Gauge("postal_queue_returned_last", "Rows the last requeue pass returned (due + expired).")


@attrs.define(eq=False)
class Requeuer:
    """Started and stopped by the role's lease (C{on_acquired}/C{on_lost})."""

    _clock: IReactorTime
    _queue: IQueueMaintenance
    _wakeup: IWakeup
    _interval: float = 1.0
    _loop: LoopingCall | None = None
    _done: Deferred[LoopingCall] | None = None

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = LoopingCall(self.run_once)
        self._loop.clock = self._clock
        self._done = self._loop.start(self._interval, now=True)
        self._done.addErrback(lambda f: log.failure("Requeuer loop stopped", f))
        log.info("Requeuer active")

    def stop(self) -> Deferred[object] | None:
        loop, done = self._loop, self._done
        self._loop = self._done = None
        if loop is None or not loop.running:
            return None
        loop.stop()
        return done  # type: ignore[return-value]

    async def run_once(self) -> None:
        """One pass; failures are logged and the next pass tries again."""
        now = self._clock.seconds()
        try:
            result, stats = await self._queue.requeue(now)
        except Exception:
            log.failure("Requeue pass failed")
            return
        QUEUE_SIZE.set(stats.size)
        QUEUE_READY.set(stats.ready)
        QUEUE_DEFERRED.set(stats.deferred)
        QUEUE_LOCKED.set(stats.locked)
        QUEUE_OLDEST_AGE.set(0 if stats.oldest_created_at is None else max(0.0, now - stats.oldest_created_at))
        QUEUE_RETURNED.set(result.due_retries + result.expired_leases)
        if result.expired_leases:
            log.warn("Returned {count} rows whose worker lease expired", count=result.expired_leases)
        if result.due_retries or result.expired_leases or stats.ready:
            self._wakeup.wake()

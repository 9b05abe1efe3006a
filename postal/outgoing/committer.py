# -*- test-case-name: tests.outgoing.test_outgoing -*-
"""
Group commit: API requests arriving while a store transaction is in flight
are stored together in the next one.  Each request's Deferred fires only
after the transaction holding it has committed, so durability is never
traded for speed; one fsync simply serves many requests.
"""

from __future__ import annotations

from typing import Callable, Sequence

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from postal.db.messages import NewTransaction, StoredMessage

__all__ = ["GroupCommitter"]

log = Logger()

_Commit = Callable[[float, Sequence[NewTransaction]], "Deferred[list[list[StoredMessage]]]"]


@attrs.define(eq=False)
class GroupCommitter:
    """
    Batches L{store} calls: at most C{max_in_flight} transactions run at
    once, each holding up to C{max_batch} requests.  When a batch fails, its
    requests are retried one by one so one bad request fails alone.
    """

    _commit: _Commit
    _clock: IReactorTime
    max_batch: int = 100
    max_in_flight: int = 1
    _pending: list[tuple[NewTransaction, Deferred[list[StoredMessage]], bool]] = attrs.field(factory=list, init=False)
    _in_flight: int = attrs.field(default=0, init=False)

    def store(self, transaction: NewTransaction) -> Deferred[list[StoredMessage]]:
        """Fires with the stored messages once they are committed."""
        d: Deferred[list[StoredMessage]] = Deferred()
        self._pending.append((transaction, d, False))
        self._flush()
        return d

    def _flush(self) -> None:
        while self._pending and self._in_flight < self.max_in_flight:
            if self._pending[0][2]:
                batch = [self._pending.pop(0)]
            else:
                count = 0
                while count < len(self._pending) and count < self.max_batch and not self._pending[count][2]:
                    count += 1
                batch, self._pending[:count] = self._pending[:count], []
            self._run(batch)

    def _run(self, batch: list[tuple[NewTransaction, Deferred[list[StoredMessage]], bool]]) -> None:
        self._in_flight += 1
        d = self._commit(self._clock.seconds(), [item[0] for item in batch])

        def committed(results: list[list[StoredMessage]]) -> None:
            for (_, waiting, _single), stored in zip(batch, results):
                waiting.callback(stored)

        def failed(failure: Failure) -> None:
            if len(batch) == 1:
                batch[0][1].errback(failure)
                return
            log.failure("Group commit of {count} API requests failed; retrying them one by one",
                        failure, count=len(batch))
            self._pending[:0] = [(txn, waiting, True) for txn, waiting, _ in batch]

        def finished(_: object) -> None:
            self._in_flight -= 1
            self._flush()

        d.addCallbacks(committed, failed).addBoth(finished)

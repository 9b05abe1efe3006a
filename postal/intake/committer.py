# -*- test-case-name: tests.intake.test_committer -*-
"""
Group commit: transactions that finish DATA while a commit is in flight wait
and are stored together in the next one.  Each caller's Deferred fires only
after the database transaction holding its message has committed, so a 250
is never sent for mail that a crash could lose.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from postal.intake.interfaces import IIntakeStore
from postal.intake.values import ReceivedTransaction

__all__ = ["GroupCommitter"]

log = Logger()

_Waiting = tuple[ReceivedTransaction, "Deferred[list[str]]"]


@attrs.define
class GroupCommitter:
    """
    Batches L{ReceivedTransaction}s into L{IIntakeStore.store_transactions}.

    @ivar _max_in_flight: commits running at once (1 for SQLite's single
        writer; more for PostgreSQL).
    @ivar _max_batch: transactions per commit at most.
    """

    _store: IIntakeStore
    _clock: IReactorTime
    _max_in_flight: int = 1
    _max_batch: int = 200
    _waiting: list[_Waiting] = attrs.field(factory=list)
    _in_flight: int = 0
    batches: int = 0

    def submit(self, transaction: ReceivedTransaction) -> Deferred[list[str]]:
        """Fires with the message tokens once C{transaction} is committed."""
        d: Deferred[list[str]] = Deferred()
        self._waiting.append((transaction, d))
        self._maybe_flush()
        return d

    def _maybe_flush(self) -> None:
        while self._waiting and self._in_flight < self._max_in_flight:
            batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
            self._commit(batch, retry_alone=len(batch) > 1)

    def _commit(self, batch: Sequence[_Waiting], retry_alone: bool) -> None:
        self._in_flight += 1
        self.batches += 1
        d = self._store.store_transactions(self._clock.seconds(), [t for t, _ in batch])

        def done(result: list[list[str]] | Failure) -> None:
            self._in_flight -= 1
            if isinstance(result, Failure):
                self._failed(batch, result, retry_alone)
            else:
                for (_, waiter), tokens in zip(batch, result):
                    waiter.callback(tokens)
            self._maybe_flush()

        d.addBoth(done)

    def _failed(self, batch: Sequence[_Waiting], failure: Failure, retry_alone: bool) -> None:
        if retry_alone:
            # One bad transaction must not fail its neighbours: store each alone.
            log.warn("Group commit of {count} transactions failed ({error}); storing each alone",
                     count=len(batch), error=failure.getErrorMessage())
            for one in batch:
                self._commit([one], retry_alone=False)
            return
        log.failure("Storing a received message failed", failure)
        for _, waiter in batch:
            waiter.errback(failure)

    @property
    def pending(self) -> int:
        return len(self._waiting)



# -*- test-case-name: tests.test_groupcommit -*-
"""
Group commit: items (received SMTP transactions, API requests) that arrive
while a store transaction is in flight wait and are stored together in the
next one.  Each submitter's Deferred fires only after the transaction
holding its item has committed, so durability is never traded for speed:
one fsync simply serves many submitters.
"""

from __future__ import annotations

from typing import Callable, Generic, Sequence, TypeVar

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["GroupCommitter"]

log = Logger()

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


@attrs.define(eq=False)
class _Waiting(Generic[_Item, _Result]):
    item: _Item
    done: Deferred[_Result]
    alone: bool = False


@attrs.define(eq=False)
class GroupCommitter(Generic[_Item, _Result]):
    """
    Batches calls to C{commit(now, items) -> Deferred[results]} (one result
    per item, in order): at most C{max_in_flight} commits run at once (1 for
    SQLite's single writer), each holding up to C{max_batch} items.  When a
    batch fails its items are retried one by one, so one bad item fails
    alone.  C{after_commit} runs after every successful commit (it wakes
    the workers in the all-in-one process).
    """

    _commit: Callable[[float, Sequence[_Item]], Deferred[list[_Result]]]
    _clock: IReactorTime
    max_batch: int = 200
    max_in_flight: int = 1
    after_commit: Callable[[], None] | None = None
    _waiting: list[_Waiting[_Item, _Result]] = attrs.field(factory=list, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    batches: int = attrs.field(default=0, init=False)

    def submit(self, item: _Item) -> Deferred[_Result]:
        """Fires with the item's result once it is committed."""
        done: Deferred[_Result] = Deferred()
        self._waiting.append(_Waiting(item, done))
        self._flush()
        return done

    @property
    def pending(self) -> int:
        """Items waiting for a commit to start."""
        return len(self._waiting)

    def _flush(self) -> None:
        while self._waiting and self._in_flight < self.max_in_flight:
            count = 1
            if not self._waiting[0].alone:
                while (count < len(self._waiting) and count < self.max_batch
                       and not self._waiting[count].alone):
                    count += 1
            batch, self._waiting[:count] = self._waiting[:count], []
            self._run(batch)

    def _run(self, batch: list[_Waiting[_Item, _Result]]) -> None:
        self._in_flight += 1
        self.batches += 1
        d = self._commit(self._clock.seconds(), [w.item for w in batch])

        def committed(results: list[_Result]) -> None:
            for waiting, result in zip(batch, results):
                waiting.done.callback(result)
            if self.after_commit is not None:
                self.after_commit()

        def failed(failure: Failure) -> None:
            if len(batch) == 1:
                log.failure("Storing {count} item failed", failure, count=1)
                batch[0].done.errback(failure)
                return
            log.warn("Group commit of {count} items failed ({error}); storing each alone",
                     count=len(batch), error=failure.getErrorMessage())
            self._waiting[:0] = [_Waiting(w.item, w.done, alone=True) for w in batch]

        def finished(_: object) -> None:
            self._in_flight -= 1
            self._flush()

        d.addCallbacks(committed, failed).addBoth(finished)

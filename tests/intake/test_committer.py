# -*- test-case-name: tests.intake.test_committer -*-
"""Group commit: batching, ordering, and failure isolation."""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.intake.committer import GroupCommitter
from postal.intake.values import QueuedMessage, ReceivedTransaction


def transaction(name: str) -> ReceivedTransaction:
    return ReceivedTransaction(1, name.encode(), (QueuedMessage("outgoing", f"{name}@x.test", "", 1),))


class RecordingStore:
    """Holds each commit until released; fails transactions whose raw is b'bad'."""

    def __init__(self) -> None:
        self.commits: list[tuple[list[bytes], Deferred[Any]]] = []

    def store_transactions(self, now: float, transactions: Sequence[ReceivedTransaction]) -> Deferred[Any]:
        if any(t.raw == b"bad" for t in transactions):
            return fail(ValueError("bad"))
        d: Deferred[Any] = Deferred()
        self.commits.append(([t.raw for t in transactions], d))
        return d

    def release(self, index: int) -> None:
        raws, d = self.commits[index]
        d.callback([[raw.decode()] for raw in raws])


class GroupCommitterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = RecordingStore()
        self.committer = GroupCommitter(self.store, Clock())  # type: ignore[arg-type]

    def test_waiting_transactions_share_one_commit(self) -> None:
        """Transactions that arrive during a commit are stored together in the next."""
        first = self.committer.submit(transaction("a"))
        second = self.committer.submit(transaction("b"))
        third = self.committer.submit(transaction("c"))
        self.assertEqual([raws for raws, _ in self.store.commits], [[b"a"]])
        self.store.release(0)
        self.assertEqual(self.successResultOf(first), ["a"])
        self.assertEqual([raws for raws, _ in self.store.commits], [[b"a"], [b"b", b"c"]])
        self.assertNoResult(second)
        self.store.release(1)
        self.assertEqual((self.successResultOf(second), self.successResultOf(third)), (["b"], ["c"]))

    def test_nothing_fires_before_commit(self) -> None:
        """A submitter hears nothing until its commit finishes."""
        self.assertNoResult(self.committer.submit(transaction("a")))

    def test_bad_transaction_fails_alone(self) -> None:
        """When a group commit fails, each transaction is retried alone; only the bad one fails."""
        blocker = self.committer.submit(transaction("a"))
        good = self.committer.submit(transaction("b"))
        bad = self.committer.submit(transaction("bad"))
        self.store.release(0)
        self.successResultOf(blocker)
        self.failureResultOf(bad, ValueError)
        self.store.release(1)
        self.assertEqual(self.successResultOf(good), ["b"])
        self.flushLoggedErrors(ValueError)

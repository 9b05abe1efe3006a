# -*- test-case-name: tests.test_groupcommit -*-
"""Group commit: batching, ordering, failure isolation, the after-commit hook."""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.db.messages import NewTransaction, StoredMessage
from postal.groupcommit import GroupCommitter
from postal.db.messages import NewMessage, NewTransaction


def transaction(name: str) -> NewTransaction:
    return NewTransaction(1, name.encode(), (NewMessage("outgoing", f"{name}@x.test", "", 1),))


class RecordingStore:
    """Holds each commit until released; fails transactions whose raw is b'bad'."""

    def __init__(self) -> None:
        self.commits: list[tuple[list[bytes], Deferred[Any]]] = []

    def store_transactions(self, now: float, transactions: Sequence[NewTransaction]) -> Deferred[Any]:
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
        self.committer = GroupCommitter(self.store.store_transactions, Clock())

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
        self.assertNoResult(bad)
        self.store.release(1)
        self.assertEqual(self.successResultOf(good), ["b"])
        self.failureResultOf(bad, ValueError)
        self.flushLoggedErrors(ValueError)

    def test_after_commit_runs_after_each_successful_commit(self) -> None:
        """The after-commit hook (waking workers) runs once per commit, after its submitters hear."""
        woken: list[int] = []
        first = self.committer.submit(transaction("a"))
        self.committer.after_commit = lambda: woken.append(len(self.store.commits))
        self.committer.submit(transaction("b"))
        self.assertEqual(woken, [])
        self.store.release(0)
        self.successResultOf(first)
        self.assertEqual(woken, [1])


class APIBatchTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.calls: list[list[NewTransaction]] = []
        self.pending: list[Deferred[list[list[StoredMessage]]]] = []

    def _commit(self, now: float, transactions: list[NewTransaction]) -> Deferred[list[list[StoredMessage]]]:
        self.calls.append(list(transactions))
        d: Deferred[list[list[StoredMessage]]] = Deferred()
        self.pending.append(d)
        return d

    def _txn(self, n: int) -> NewTransaction:
        return NewTransaction(server_id=n, raw=b"x", messages=[])

    def test_batches_while_in_flight(self) -> None:
        """Requests arriving during a commit go together into the next one; none fires before its commit."""
        committer = GroupCommitter(self._commit, Clock())
        first = committer.submit(self._txn(1))
        later = [committer.submit(self._txn(n)) for n in (2, 3)]
        self.assertEqual([[t.server_id for t in c] for c in self.calls], [[1]])
        self.assertNoResult(later[0])
        self.pending[0].callback([[StoredMessage(1, "t", "a", None)]])
        self.assertEqual(self.successResultOf(first), [StoredMessage(1, "t", "a", None)])
        self.assertEqual([[t.server_id for t in c] for c in self.calls], [[1], [2, 3]])
        self.assertNoResult(later[1])
        self.pending[1].callback([[], []])
        self.assertEqual(self.successResultOf(later[1]), [])

    def test_failed_batch_retried_alone(self) -> None:
        """When a batch fails, each request is retried on its own, so only the bad one fails."""
        committer = GroupCommitter(self._commit, Clock())
        committer.submit(self._txn(1))
        a, b = committer.submit(self._txn(2)), committer.submit(self._txn(3))
        self.pending[0].callback([[]])
        self.pending[1].errback(ValueError("batch"))
        self.pending[2].errback(ValueError("bad one"))
        self.pending[3].callback([[]])
        self.failureResultOf(a, ValueError)
        self.assertEqual(self.successResultOf(b), [])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

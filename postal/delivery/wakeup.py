# -*- test-case-name: tests.delivery.test_worker -*-
"""
How workers learn there is work without busy polling.

L{IWakeup} is what producers call after they commit queue rows: in the
all-in-one process the smtp intake calls L{Notifier.wake} directly; across
processes on PostgreSQL the committing transaction runs
L{postal.db.queue.notify_queue_txn} and each worker's
L{PostgresQueueListener} turns the NOTIFY into a local wake.  Workers also
poll on a short timer as the fallback (SQLite across processes).
"""

from __future__ import annotations

import threading
from typing import Callable

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorFromThreads, IReactorThreads
from twisted.logger import Logger
from zope.interface import Interface, implementer

from postal.db.queue import QUEUE_CHANNEL

__all__ = ["IWakeup", "Notifier", "PostgresQueueListener"]

log = Logger()


class IWakeup(Interface):
    """Something that wakes the workers when queue rows became ready."""

    def wake() -> None:
        """New or returned queue rows are committed: workers should claim."""


@implementer(IWakeup)
class Notifier:
    """In-process wake-ups: C{wake()} calls every subscriber (on the reactor thread)."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def wake(self) -> None:
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.failure("A wake-up subscriber failed")


class PostgresQueueListener(Service):
    """
    LISTENs on the queue channel on a thread of its own and wakes
    C{notifier} on the reactor thread for every notification.
    """

    name = "queue-listener"

    def __init__(self, url: str, notifier: IWakeup, reactor: IReactorThreads) -> None:
        self._url = url.replace("postgresql+psycopg://", "postgresql://")
        self._notifier = notifier
        self._reactor = reactor
        self._stop = threading.Event()

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._stop.clear()
        self._reactor.callInThread(self._listen)

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()  # type: ignore[no-untyped-call]
        self._stop.set()

    def _listen(self) -> None:
        import psycopg

        from_threads: IReactorFromThreads = self._reactor  # type: ignore[assignment]
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {QUEUE_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            from_threads.callFromThread(self._notifier.wake)
            except Exception:
                log.failure("Queue listener lost its PostgreSQL connection; reconnecting")
                self._stop.wait(1.0)

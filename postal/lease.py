# -*- test-case-name: tests.test_lease -*-
"""
One active instance per installation: L{LeaseService} holds a role's
database lease while its process is healthy and tells the role when it
gains or loses it.

Timing, for a lease C{period} P: every P/3 the service takes or renews the
lease for 2P/3.  A holder that stops renewing (dead, partitioned, stuck) is
replaced within one period of its last renewal: its lease lapses by 2P/3
and a standby's next attempt comes at most P/3 later.  A holder misses one
renewal before its lease can lapse; when a renewal fails (database error)
or finds the lease taken, it calls C{on_lost} at once rather than guess.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any, Callable

from prometheus_client import Gauge
from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from postal.db.leases import acquire_or_renew_txn, release_txn
from postal.db.pool import TransactionPool

__all__ = ["LeaseService", "lease_holder"]

log = Logger()

LEASE_HELD = Gauge("postal_lease_held", "1 while this process holds the role's lease.", ["role"])


def lease_holder() -> str:
    """
    This process's name in the lease table, as Postal's locker spells it:
    C{host:<hostname> pid:<pid> <random hex>} (the random part tells apart a
    restarted process that got the same pid).
    """
    return f"host:{socket.gethostname()} pid:{os.getpid()} {secrets.token_hex(8)}"


class LeaseService(Service):
    """
    Takes and renews C{role}'s lease on C{clock}; calls C{on_acquired()}
    when it gains the lease and C{on_lost()} when it loses it.  Either
    callback may return a Deferred; on stop the service waits for
    C{on_lost()} (the role finishing its in-flight work) before releasing
    the lease, so a standby never overlaps with work still running here.
    """

    def __init__(
        self,
        role: str,
        holder: str,
        pool: TransactionPool,
        clock: IReactorTime,
        period: float,
        on_acquired: Callable[[], Any],
        on_lost: Callable[[], Any],
    ) -> None:
        self.name = f"{role}-lease"
        self._role = role
        self._holder = holder
        self._pool = pool
        self._clock = clock
        self._period = period
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._loop: LoopingCall | None = None
        self._looping: Deferred[LoopingCall] | None = None
        self.held = False

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._loop = LoopingCall(self._attempt)
        self._loop.clock = self._clock
        self._looping = self._loop.start(self._period / 3, now=True)

    async def _try(self) -> bool:
        return await self._pool.run_in_transaction(
            "acquire_or_renew_lease", acquire_or_renew_txn,
            self._role, self._holder, self._clock.seconds(), self._period * 2 / 3,
        )

    def _attempt(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._attempt_once())

    async def _attempt_once(self) -> None:
        try:
            held = await self._try()
        except Exception:
            log.failure("Could not take or renew the {role} lease", role=self._role)
            held = False
        if held and not self.held:
            self._set_held(True)
            log.info("Took the {role} lease as {holder}", role=self._role, holder=self._holder)
            await self._callback(self._on_acquired, "on_acquired")
        elif self.held and not held:
            self._set_held(False)
            log.warn("Lost the {role} lease", role=self._role)
            await self._callback(self._on_lost, "on_lost")

    def _set_held(self, held: bool) -> None:
        self.held = held
        LEASE_HELD.labels(self._role).set(1 if held else 0)

    async def _callback(self, callback: Callable[[], Any], which: str) -> None:
        try:
            await maybeDeferred(callback)
        except Exception:
            log.failure("The {role} lease's {callback} callback failed", role=self._role, callback=which)

    def stopService(self) -> Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._looping is not None:
            await self._looping
        self._loop = self._looping = None
        if not self.held:
            return
        self._set_held(False)
        await self._callback(self._on_lost, "on_lost")
        try:
            await self._pool.run_in_transaction("release_lease", release_txn, self._role, self._holder)
        except Exception:
            log.failure("Could not release the {role} lease; it lapses by itself", role=self._role)
        else:
            log.info("Released the {role} lease", role=self._role)


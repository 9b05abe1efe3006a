# -*- test-case-name: tests.smtp.test_limits -*-
"""
Limits shared by every connection of one listener: total and per-IP
connection caps, and AUTH failures slowed down and limited per client IP.
"""

from __future__ import annotations

from collections import defaultdict

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from postal.smtp.replies import Reply
from postal.smtp.session import AuthFailureTracker, Outcome

__all__ = ["ConnectionLimits", "ClockedAuthFailureTracker", "AUTH_FAILURE_WINDOW"]

#: Failures older than this are forgotten.
AUTH_FAILURE_WINDOW = 600.0
#: Each failure delays its 535 by one more second, up to this many.
MAX_AUTH_DELAY = 5.0


@attrs.define
class ConnectionLimits:
    """Counts open connections, in total and per client IP."""

    max_connections: int
    max_per_ip: int
    total: int = 0
    _per_ip: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))

    def admit(self, client_ip: str) -> bool:
        """Count the connection and return True, or return False to refuse it."""
        if self.max_connections and self.total >= self.max_connections:
            return False
        if self.max_per_ip and self._per_ip[client_ip] >= self.max_per_ip:
            return False
        self.total += 1
        self._per_ip[client_ip] += 1
        return True

    def release(self, client_ip: str) -> None:
        self.total -= 1
        self._per_ip[client_ip] -= 1
        if self._per_ip[client_ip] <= 0:
            del self._per_ip[client_ip]


class ClockedAuthFailureTracker(AuthFailureTracker):
    """Remembers failure times per IP on the injected clock."""

    def __init__(self, clock: IReactorTime, max_failures: int) -> None:
        self._clock = clock
        self._max = max_failures
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client_ip: str) -> list[float]:
        cutoff = self._clock.seconds() - AUTH_FAILURE_WINDOW
        recent = [t for t in self._failures.get(client_ip, ()) if t > cutoff]
        if recent:
            self._failures[client_ip] = recent
        else:
            self._failures.pop(client_ip, None)
        return recent

    def record_failure(self, client_ip: str) -> None:
        self._recent(client_ip)
        self._failures.setdefault(client_ip, []).append(self._clock.seconds())

    def blocked(self, client_ip: str) -> bool:
        return bool(self._max) and len(self._recent(client_ip)) >= self._max

    def delay_for(self, client_ip: str) -> float:
        return min(float(len(self._recent(client_ip))), MAX_AUTH_DELAY)

    def delayed(self, client_ip: str, reply: Reply) -> Outcome:
        delay = self.delay_for(client_ip)
        if delay <= 0:
            return reply
        return deferLater(self._clock, delay, lambda: reply)

# -*- test-case-name: tests.test_clock -*-
"""
The one way to read the time: from an injected L{IReactorTime}.
"""

from __future__ import annotations

import datetime

from twisted.internet.interfaces import IReactorTime

__all__ = ["now", "utc_datetime"]


def now(clock: IReactorTime) -> float:
    """Seconds since the epoch, from C{clock} (a reactor, or task.Clock in tests)."""
    return clock.seconds()


def utc_datetime(timestamp: float) -> datetime.datetime:
    """An aware UTC datetime for an epoch timestamp."""
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)

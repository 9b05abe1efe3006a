# -*- test-case-name: tests.cron.test_schedules -*-
"""
When tasks run: Postal's schedules (postal-behaviour.md section 1.3), in
UTC.  A schedule only answers "the first run strictly after C{t}"; the
scheduler stores that answer in C{scheduled_tasks.next_run_after}.
"""

from __future__ import annotations

import datetime

import attrs
from zope.interface import Interface, implementer

from postal.clock import utc_datetime

__all__ = ["ISchedule", "EveryMinute", "HourlyAt", "DailyAt"]

_HOUR = datetime.timedelta(hours=1)
_DAY = datetime.timedelta(days=1)


class ISchedule(Interface):
    def next_after(timestamp: float) -> float:
        """The first run strictly after C{timestamp} (epoch seconds)."""

    def describe() -> str:
        """How a person would say this schedule."""


@implementer(ISchedule)
@attrs.frozen
class EveryMinute:
    """At the start of every minute."""

    def next_after(self, timestamp: float) -> float:
        return float((int(timestamp // 60) + 1) * 60)

    def describe(self) -> str:
        return "every minute"


@implementer(ISchedule)
@attrs.frozen
class HourlyAt:
    """Every hour at C{minute} past."""

    minute: int = attrs.field(validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(59)))

    def next_after(self, timestamp: float) -> float:
        moment = utc_datetime(timestamp)
        candidate = moment.replace(minute=self.minute, second=0, microsecond=0)
        if candidate <= moment:
            candidate += _HOUR
        return candidate.timestamp()

    def describe(self) -> str:
        return f"hourly at :{self.minute:02d}"


@implementer(ISchedule)
@attrs.frozen
class DailyAt:
    """Every day at C{hour}:C{minute} UTC."""

    hour: int = attrs.field(validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(23)))
    minute: int = attrs.field(default=0, validator=attrs.validators.and_(
        attrs.validators.ge(0), attrs.validators.le(59)))

    def next_after(self, timestamp: float) -> float:
        moment = utc_datetime(timestamp)
        candidate = moment.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if candidate <= moment:
            candidate += _DAY
        return candidate.timestamp()

    def describe(self) -> str:
        return f"daily at {self.hour:02d}:{self.minute:02d} UTC"

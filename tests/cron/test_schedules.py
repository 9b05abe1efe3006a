# -*- test-case-name: tests.cron.test_schedules -*-
"""Postal's schedules: every minute, hourly at :15 and :45, daily at 03:00 UTC."""

from __future__ import annotations

import datetime

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from postal.cron.schedules import DailyAt, EveryMinute, HourlyAt, ISchedule


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc).timestamp()


class ScheduleTests(SynchronousTestCase):
    def test_interface(self) -> None:
        """Each schedule provides L{ISchedule}."""
        for schedule in (EveryMinute(), HourlyAt(15), DailyAt(3)):
            self.assertTrue(verifyObject(ISchedule, schedule))

    def test_every_minute(self) -> None:
        """The next run is the start of the next minute, strictly later."""
        self.assertEqual(EveryMinute().next_after(at("2026-12-04 10:30:00")), at("2026-12-04 10:31:00"))
        self.assertEqual(EveryMinute().next_after(at("2026-12-04 10:30:59.5")), at("2026-12-04 10:31:00"))

    def test_hourly(self) -> None:
        """Hourly at :15 is this hour's :15 if still ahead, else the next hour's."""
        schedule = HourlyAt(15)
        self.assertEqual(schedule.next_after(at("2026-12-04 10:14:59")), at("2026-12-04 10:15:00"))
        self.assertEqual(schedule.next_after(at("2026-12-04 10:15:00")), at("2026-12-04 11:15:00"))
        self.assertEqual(schedule.next_after(at("2026-12-31 23:50:00")), at("2027-01-01 00:15:00"))
        self.assertEqual(HourlyAt(45).describe(), "hourly at :45")

    def test_daily(self) -> None:
        """Daily at 03:00 UTC is today's if still ahead, else tomorrow's."""
        schedule = DailyAt(3)
        self.assertEqual(schedule.next_after(at("2026-12-04 02:59:59")), at("2026-12-04 03:00:00"))
        self.assertEqual(schedule.next_after(at("2026-12-04 03:00:00")), at("2026-12-05 03:00:00"))
        self.assertEqual(schedule.describe(), "daily at 03:00 UTC")

    def test_bad_times_rejected(self) -> None:
        """A minute or hour out of range is refused."""
        self.assertRaises(ValueError, HourlyAt, 60)
        self.assertRaises(ValueError, DailyAt, 24)

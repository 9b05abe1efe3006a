# -*- test-case-name: tests.cron.test_retention -*-
"""
Retention's cut-offs in whole UTC days, and SQLite giving the space of
deleted raw messages back to the file system.
"""

from __future__ import annotations

import os

from sqlalchemy import update
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.cron.retention import ProcessMessageRetention, retention_cutoffs
from postal.db import schema as s
from postal.db.pool import SynchronousDatabasePool
from postal.db.retention import RetentionPolicy
from tests.cron.fixtures import DAY, NOW, Installation
from tests.dbhelpers import sqlite_engine

#: 2026-12-04 00:00 UTC, the start of NOW's day.
TODAY = 1796342400.0


class CutoffTests(SynchronousTestCase):
    def test_whole_days(self) -> None:
        """Raw messages keep N days before today; messages keep N days including today."""
        policy = RetentionPolicy(1, message_retention_days=60, raw_message_retention_days=30,
                                 raw_message_retention_size=None)
        self.assertEqual(retention_cutoffs(policy, NOW), (TODAY - 30 * DAY, TODAY - 59 * DAY))

    def test_null_keeps(self) -> None:
        """Null settings give no cut-off."""
        policy = RetentionPolicy(1, None, None, None)
        self.assertEqual(retention_cutoffs(policy, NOW), (None, None))


class SQLiteSpaceTests(SynchronousTestCase):
    def test_space_returned(self) -> None:
        """
        A new SQLite database uses incremental auto-vacuum, and after
        retention deletes raw messages the database file shrinks.
        """
        engine = sqlite_engine(self)
        pool = SynchronousDatabasePool(engine)
        site = Installation(pool)
        with engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one(), 2)
        for i in range(100):  # ~2,500 pages: more than one vacuum transaction
            site.store(NOW - 40 * DAY, [f"{i}@x.test"], size=100 * 1024)
        site.execute(update(s.servers).values(raw_message_retention_days=30))
        path = engine.url.database
        assert path is not None

        def file_size() -> int:
            raw = engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            finally:
                raw.close()
            return os.path.getsize(path)

        before = file_size()
        clock = Clock()
        clock.advance(NOW)
        summary = self.successResultOf(ProcessMessageRetention(pool, clock, 7).run())
        self.assertIn("deleted 100 raw messages", summary)
        self.assertIn("0 free pages left", summary)
        after = file_size()
        self.assertLess(after, before - 9_500_000, (before, after))

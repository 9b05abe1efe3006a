# -*- test-case-name: tests.db.test_pool -*-
"""
Tests for L{postal.db.pool}: named transactions, SQLite's write lock taken
up front and waited for in short pauses, and the retry rules.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from twisted.trial.unittest import SynchronousTestCase

from postal.db import pool as pool_module
from postal.db.pool import SynchronousDatabasePool, make_engine


def _statement(sql: str) -> Any:
    def run(conn: Connection) -> None:
        conn.execute(text(sql))
    return run


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


class _SQLiteFile(SynchronousTestCase):
    def setUp(self) -> None:
        folder = self.mktemp()
        os.makedirs(folder)
        self.path = os.path.join(folder, "pool.sqlite")
        self.engine = make_engine(f"sqlite:///{self.path}")
        self.addCleanup(self.engine.dispose)
        self.pool = SynchronousDatabasePool(self.engine)
        self.pool.call("create", _statement("CREATE TABLE t (n INTEGER)"))

    def other_process_holds_the_write_lock(self, seconds: float) -> threading.Thread:
        """
        Another connection (as another process would) takes the write lock
        and commits a row after C{seconds}.
        """
        holder = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")

        def release() -> None:
            time.sleep(seconds)
            holder.execute("COMMIT")
            holder.close()

        thread = threading.Thread(target=release)
        thread.start()
        self.addCleanup(thread.join)
        return thread


class SQLiteWriteLockTests(_SQLiteFile):
    def test_transaction_waits_for_the_lock_then_sees_the_other_commit(self) -> None:
        """
        A transaction started while another connection holds the write lock
        waits (no error) and runs after that commit, seeing its row.
        """
        self.other_process_holds_the_write_lock(0.2)

        def insert_and_count(conn: Connection) -> int:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

        self.assertEqual(self.pool.call("insert", insert_and_count), 2)

    def test_busy_timeout_still_covers_statements_inside(self) -> None:
        """Only BEGIN polls; inside the transaction the connection's busy timeout is the generous one."""
        self.assertEqual(self.pool.call("pragma", lambda c: c.execute(text("PRAGMA busy_timeout")).scalar_one()),
                         30000)

    def test_lock_held_past_the_wait_is_retried(self) -> None:
        """
        When BEGIN gives up (here after 50 ms), the failure is SQLite's
        "database is locked", which the pool retries with a back-off, so
        a lock held for longer still ends in a committed transaction.
        """
        self.patch(pool_module, "_BEGIN_GIVE_UP", 0.05)
        self.other_process_holds_the_write_lock(0.3)
        self.pool.call("insert", _statement("INSERT INTO t VALUES (2)"))
        self.assertEqual(self.pool.call("count", _count), 2)

    def test_threads_of_one_process_take_turns(self) -> None:
        """Transactions on several threads of one pool never overlap (one writer per database)."""
        inside: list[int] = []
        overlaps: list[int] = []

        def slow(conn: Connection) -> None:
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            conn.execute(text("INSERT INTO t VALUES (3)"))
            time.sleep(0.01)
            inside.pop()

        threads = [threading.Thread(target=self.pool.call, args=("slow", slow)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(overlaps, [])
        self.assertEqual(self.pool.call("count", _count), 6)


class RuleTests(_SQLiteFile):
    def test_rows_may_not_leave_the_transaction(self) -> None:
        """A transaction returning a SQLAlchemy Row is a programming error, said at once."""
        def leak(conn: Connection) -> Any:
            return conn.execute(select(text("1"))).first()

        error = self.assertRaises(TypeError, self.pool.call, "leak", leak)
        self.assertIn("'leak'", str(error))

    def test_other_errors_are_not_retried(self) -> None:
        calls: list[int] = []

        def broken(conn: Connection) -> None:
            calls.append(1)
            conn.execute(text("SELECT * FROM missing"))

        self.assertRaises(Exception, self.pool.call, "broken", broken)
        self.assertEqual(calls, [1])

    def test_failed_transaction_leaves_nothing(self) -> None:
        def half(conn: Connection) -> None:
            conn.execute(text("INSERT INTO t VALUES (9)"))
            raise ValueError("stop")

        self.assertRaises(ValueError, self.pool.call, "half", half)
        self.assertEqual(self.pool.call("count", _count), 0)

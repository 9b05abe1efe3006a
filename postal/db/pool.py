# -*- test-case-name: tests.db.test_pool -*-
"""
SQLAlchemy Core in a dedicated thread pool that is itself a Service.

Every database call is a named transaction: C{run_in_transaction(name, fn,
*args)} runs C{fn(connection, *args)} inside C{connection.begin()} on a pool
thread and fires its Deferred on the reactor thread with the result, which
must be a plain value (never a SQLAlchemy C{Row} or C{Result}, which cannot
safely cross threads).  Deadlocks, serialisation failures and SQLite's
"database is locked" are retried here and only here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from typing import Any, Callable, Concatenate, ParamSpec, Protocol, TypeVar

import attrs
from prometheus_client import Counter, Histogram
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, CursorResult, Result, Row
from sqlalchemy.exc import DBAPIError, OperationalError
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed, fail
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

__all__ = ["DatabasePool", "SynchronousDatabasePool", "make_engine", "TransactionPool"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

log = Logger()

TRANSACTION_SECONDS = Histogram(
    "postal_db_transaction_seconds",
    "Time spent in one named database transaction (pool thread side).",
    ["name"],
)
TRANSACTION_RETRIES = Counter(
    "postal_db_transaction_retries_total",
    "Transactions retried after a deadlock, serialisation failure or lock timeout.",
    ["name"],
)

_MAX_ATTEMPTS = 8


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """
    WAL for concurrent readers, FULL sync so a committed transaction survives
    a crash of the process or the machine, and a generous busy timeout.
    """
    cursor = dbapi_connection.cursor()
    # Must precede journal_mode=WAL, which writes the header of a new file:
    # only a database without tables can take it.  Lets the cron role's
    # retention give freed pages back with PRAGMA incremental_vacuum; a
    # no-op on databases created before.
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


#: Pauses between attempts to take SQLite's write lock: short, because the
#: lock is held for a commit (a millisecond or two) and SQLite's own busy
#: handler sleeps 1, 2, 5, 10, 15, 20, 25... ms, so a writer in another
#: process kept waiting long after the lock was free.
_BEGIN_FIRST_PAUSE = 0.00005
_BEGIN_LONGEST_PAUSE = 0.001
_BEGIN_GIVE_UP = 30.0


def _sqlite_begin(connection: Connection) -> None:
    """
    Start a write transaction up front (pysqlite's own transaction handling
    is off, see make_engine) so two writers never deadlock on upgrade.
    While another process holds the write lock, retry after a short pause
    rather than in SQLite's busy handler (see L{_BEGIN_FIRST_PAUSE}); the
    busy timeout still covers every other statement.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    try:
        _begin_immediate(raw)
    except sqlite3.Error as e:
        # Wrapped as SQLAlchemy wraps driver errors, so the retry rules apply.
        raise DBAPIError.instance("BEGIN IMMEDIATE", None, e, sqlite3.Error) from e


def _begin_immediate(raw: sqlite3.Connection) -> None:
    raw.execute("PRAGMA busy_timeout=0")
    try:
        pause = _BEGIN_FIRST_PAUSE
        give_up = time.monotonic() + _BEGIN_GIVE_UP
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > give_up:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _BEGIN_LONGEST_PAUSE)
    finally:
        raw.execute("PRAGMA busy_timeout=30000")


#: One writer per SQLite database at a time in this process: the threads of
#: a pool queue here (handed over at once) instead of each polling SQLite.
_sqlite_writers: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()
_sqlite_writers_lock = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    with _sqlite_writers_lock:
        lock = _sqlite_writers.get(engine)
        if lock is None:
            lock = _sqlite_writers[engine] = threading.Lock()
        return lock


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An Engine with the settings this project relies on for C{url}."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=0,
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, OperationalError):
        text = str(error.orig).lower()
        if "database is locked" in text or "database table is locked" in text:
            return True
    if isinstance(error, DBAPIError):
        code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if code in ("40001", "40P01", "55P03"):
            return True
    return False


def _check_result(name: str, value: Any) -> None:
    if isinstance(value, (Row, Result, CursorResult)):
        raise TypeError(f"transaction {name!r} returned a SQLAlchemy {type(value).__name__}; return plain values")


def run_transaction_body(
    engine: Engine,
    name: str,
    fn: Callable[Concatenate[Connection, _P], _R],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _R:
    """Run C{fn} in a transaction on this thread, retrying transient failures."""
    attempt = 0
    writer = _writer_lock(engine)
    while True:
        attempt += 1
        started = time.perf_counter()
        try:
            if writer is None:
                with engine.begin() as connection:
                    result = fn(connection, *args, **kwargs)
            else:
                with writer, engine.begin() as connection:
                    result = fn(connection, *args, **kwargs)
            _check_result(name, result)
            return result
        except DBAPIError as e:
            if attempt >= _MAX_ATTEMPTS or not _is_retryable(e):
                raise
            TRANSACTION_RETRIES.labels(name).inc()
            log.warn(
                "Retrying transaction {name} (attempt {attempt}) after {error}",
                name=name, attempt=attempt, error=str(e.orig),
            )
            # Back off on the pool thread, never the reactor thread.
            time.sleep(min(0.01 * 2**attempt, 0.5))
        finally:
            TRANSACTION_SECONDS.labels(name).observe(time.perf_counter() - started)


class TransactionPool(Protocol):
    """What stores need of a pool: named transactions, and which database it is."""

    def run_in_transaction(
        self,
        name: str,
        fn: Callable[Concatenate[Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Deferred[_R]:
        """Run C{fn(connection, *args)} in a transaction; fires with its result after commit."""
        ...

    @property
    def dialect(self) -> str:
        """C{"sqlite"} or C{"postgresql"}."""
        ...


@attrs.define(eq=False)
class DatabasePool(Service, TransactionPool):
    """
    Owns the Engine and a Twisted ThreadPool; starts and stops with the
    service tree.
    """

    _engine: Engine
    _reactor: IReactorThreads
    _threads: int = 10
    _pool: ThreadPool | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.name = "database"

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._pool = ThreadPool(minthreads=1, maxthreads=self._threads, name="postal-db")
        self._pool.start()

    def stopService(self) -> Deferred[None]:  # type: ignore[override]
        super().stopService()  # type: ignore[no-untyped-call]
        pool = self._pool
        if pool is None:
            return succeed(None)
        d: Deferred[None] = deferToThreadPool(self._reactor, pool, self._engine.dispose)  # type: ignore[arg-type]

        def _stop(result: object) -> object:
            pool.stop()
            self._pool = None
            return result

        d.addBoth(_stop)
        return d

    def run_in_transaction(
        self,
        name: str,
        fn: Callable[Concatenate[Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Deferred[_R]:
        if self._pool is None:
            return fail(RuntimeError(f"database pool is not running (transaction {name!r})"))
        body: Callable[..., _R] = run_transaction_body
        return deferToThreadPool(
            self._reactor,  # type: ignore[arg-type]
            self._pool,
            body, self._engine, name, fn, *args, **kwargs,
        )


@attrs.define(eq=False)
class SynchronousDatabasePool(TransactionPool):
    """
    Runs each transaction at once on the calling thread: for unit tests
    (deterministic under task.Clock) and for the CLI.
    """

    _engine: Engine

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def run_in_transaction(
        self,
        name: str,
        fn: Callable[Concatenate[Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Deferred[_R]:
        try:
            return succeed(run_transaction_body(self._engine, name, fn, *args, **kwargs))
        except BaseException:
            return fail(Failure())

    def call(
        self,
        name: str,
        fn: Callable[Concatenate[Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R:
        """Run a transaction and return its result directly (CLI use)."""
        return run_transaction_body(self._engine, name, fn, *args, **kwargs)

# -*- test-case-name: tests.cli.test_main -*-
"""
What every command gets: the parsed arguments, the configuration, output
streams that know about C{--json}, a synchronous database pool, and a
L{Runtime} (clock, resolver, prompts) that tests replace.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import IO, Any, Callable, TypeVar

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from postal.clock import now
from postal.config import PostalConfig
from postal.db.pool import SynchronousDatabasePool, make_engine
from postal.dns import IResolver, make_resolver

__all__ = ["Runtime", "CommandContext", "reactor_runtime"]

_T = TypeVar("_T")


@attrs.frozen
class Runtime:
    """
    The CLI's contact with the world beyond the database: time, DNS,
    waiting for asynchronous work, and the terminal.
    """

    clock: IReactorTime
    resolver_for: Callable[[PostalConfig], IResolver]
    wait: Callable[[Callable[[], Deferred[Any]]], Any]
    interactive: bool = False
    ask: Callable[[str], str] = input
    ask_secret: Callable[[str], str] = getpass.getpass


def _run_reactor_once(reactor: Any, start: Callable[[], Deferred[_T]]) -> _T:
    """Run the reactor until C{start()}'s Deferred fires; return or raise its result."""
    outcome: list[object] = []

    def begin() -> None:
        d = Deferred.fromCoroutine(_await(start))
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(begin)
    reactor.run(installSignalHandlers=False)
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result  # type: ignore[return-value]


async def _await(start: Callable[[], Deferred[_T]]) -> _T:
    return await start()


def reactor_runtime() -> Runtime:
    """The real thing: the global reactor (the CLI is a composition root)."""
    from twisted.internet import reactor

    return Runtime(
        clock=reactor,  # type: ignore[arg-type]
        resolver_for=lambda config: make_resolver(config.dns, reactor),  # type: ignore[arg-type]
        wait=lambda start: _run_reactor_once(reactor, start),
        interactive=sys.stdin.isatty(),
    )


@attrs.define
class CommandContext:
    """One command's arguments, configuration, streams and database."""

    args: Any
    config: PostalConfig
    runtime: Runtime
    stdout: IO[str]
    _pool: SynchronousDatabasePool | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def now(self) -> float:
        return now(self.runtime.clock)

    @property
    def pool(self) -> SynchronousDatabasePool:
        """The database, opened on first use and closed by L{close}."""
        if self._pool is None:
            self._pool = SynchronousDatabasePool(make_engine(self.config.database_url, pool_size=1))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.engine.dispose()
            self._pool = None

    def emit(self, data: dict[str, Any], *lines: str) -> None:
        """Print C{data} as one JSON object with C{--json}, else the text lines."""
        if self.json:
            self.stdout.write(json.dumps(data, sort_keys=False) + "\n")
        else:
            for line in lines:
                self.stdout.write(line + "\n")

# -*- test-case-name: tests.supervisor.test_childlog -*-
"""
Children's output.  Each child runs twistd with C{--logger} set to
L{warnings_to_stdout}: its full log is the role's JSON file (written by the
role itself, see L{postal.logs}), and only warnings, errors and anything
printed before logging starts (a bad config, an import error) reach its
stdout/stderr.  The supervisor writes those lines to C{log/<child>.log} as
text and passes them on to its own log.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    textFileLogObserver,
)
from zope.interface import implementer

from postal.logs import ReopeningFile

__all__ = ["warnings_to_stdout", "ChildOutputObserver"]


def warnings_to_stdout() -> ILogObserver:
    """twistd C{--logger} factory: events at warning level and above, as text on stdout."""
    return FilteringLogObserver(
        textFileLogObserver(sys.stdout),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)])


@implementer(ILogObserver)
class ChildOutputObserver:
    """
    The observer for L{twisted.runner.procmon.ProcessMonitor}'s own logger:
    each child output line (an event with C{tag} and C{line}) is appended to
    C{<directory>/<tag>.log}; every event then goes on to C{forward} (the
    global publisher: the supervisor's log).
    """

    def __init__(self, directory: str, forward: Callable[[LogEvent], None] = globalLogPublisher) -> None:
        self._directory = directory
        self._forward = forward
        self._files: dict[str, ReopeningFile] = {}

    def __call__(self, event: LogEvent) -> None:
        tag, line = event.get("tag"), event.get("line")
        if isinstance(tag, str) and isinstance(line, str):
            handle = self._files.get(tag)
            if handle is None:
                handle = self._files[tag] = ReopeningFile(os.path.join(self._directory, f"{tag}.log"))
            handle.write(line + "\n")
            handle.flush()
        self._forward(event)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

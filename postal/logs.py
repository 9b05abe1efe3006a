# -*- test-case-name: tests.test_logs -*-
"""
Where a role's log events go: JSON lines in C{<logging.directory>/<role>.log},
plus readable text on stdout when running in the foreground.

Two ways in, one observer:

  - a twistd plugin role (C{twistd -n postal-smtp --config X}) has a
    L{LogFileService} at the top of its service tree
    (L{postal.tap.common.make_role_base} makes it).  It adds the JSON
    observer to the global log publisher in C{privilegedStartService}, so
    the file receives everything from the listeners' start-up until the
    last child has stopped, while twistd keeps writing its own text to
    stdout (C{-n}) or C{twistd.log}.  (twistd's C{--logger} option cannot
    do this: it takes a callable with no arguments, which knows neither the
    role nor the configuration.);
  - C{postal.tac} sets L{observer_for}C{(role, config, stdout)} as the
    application's C{ILogObserver}, which replaces twistd's own observer, so
    it asks for the text on stdout itself.

The file is opened in append mode with its folder created if missing, and
reopened when it has been moved or deleted (logrotate without
C{copytruncate}), in the manner of the standard library's
C{WatchedFileHandler}.

C{logging.level} (default info) applies to the role's file and to
loggers whose observer is L{FILTERED}: modules with a debug event on a
per-message path use it, so a dropped event costs one comparison and is
never formatted by any observer, twistd's own included.
"""

from __future__ import annotations

import os
from typing import IO, TextIO, cast

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    PredicateResult,
    globalLogPublisher,
    jsonFileLogObserver,
    textFileLogObserver,
)
from zope.interface import implementer

from postal.config import PostalConfig

__all__ = ["ReopeningFile", "observer_for", "log_path", "LogFileService", "FILTERED", "set_level"]

#: The process's minimum level (C{logging.level}); L{set_level} changes it.
LEVELS = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)

#: An observer for C{Logger(observer=FILTERED)}: events below the level stop here.
FILTERED = FilteringLogObserver(globalLogPublisher, [LEVELS])


def set_level(name: str) -> None:
    """Drop events below C{name} (C{debug}, C{info}, C{warn}, C{error}, C{critical})."""
    LEVELS.setLogLevelForNamespace("", LogLevel.levelWithName(name))


class ReopeningFile:
    """
    A text file opened for appending on first write, with its folder made if
    missing, and reopened when the path no longer names the open file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._identity: tuple[int, int] | None = None

    def _open(self) -> IO[str]:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        handle = open(self.path, "a", encoding="utf-8")
        status = os.fstat(handle.fileno())
        self._file, self._identity = handle, (status.st_dev, status.st_ino)
        return handle

    def _current(self) -> IO[str]:
        if self._file is None:
            return self._open()
        try:
            status = os.stat(self.path)
            moved = (status.st_dev, status.st_ino) != self._identity
        except FileNotFoundError:
            moved = True
        if moved:
            self.close()
            return self._open()
        return self._file

    def write(self, text: str) -> None:
        """Append C{text} to the file at C{path}, as it is now."""
        self._current().write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._identity = None


def log_path(role: str, config: PostalConfig) -> str:
    """C{<logging.directory>/<role>.log}."""
    directory = config.logging.directory or os.path.join(config.root, "log")
    return os.path.join(directory, f"{role}.log")


@implementer(ILogObserver)
class _Observers:
    """Several observers as one; the JSON file is closed with L{close}."""

    def __init__(self, observers: list[ILogObserver], files: list[ReopeningFile]) -> None:
        self._observers = observers
        self._files = files

    def __call__(self, event: LogEvent) -> None:
        if LEVELS(event) is PredicateResult.no:
            return
        for observer in self._observers:
            observer(event)

    def close(self) -> None:
        for handle in self._files:
            handle.close()


def observer_for(role: str, config: PostalConfig, stdout: TextIO | None = None) -> _Observers:
    """
    The observer for C{role}: JSON lines in L{log_path} (unless
    C{logging.enabled} is false) and, when C{stdout} is given, readable
    text there.
    """
    set_level(config.logging.level)
    observers: list[ILogObserver] = []
    files: list[ReopeningFile] = []
    if config.logging.enabled:
        handle = ReopeningFile(log_path(role, config))
        files.append(handle)
        # recordSeparator="" makes plain JSON lines rather than RFC 7464 records.
        observers.append(jsonFileLogObserver(cast(IO[str], handle), recordSeparator=""))
    if stdout is not None:
        observers.append(textFileLogObserver(stdout))
    return _Observers(observers, files)


class LogFileService(MultiService):
    """
    A role's top service: its children's log events (and everyone else's)
    go to the role's observer from before the first child starts (listeners
    bind in C{privilegedStartService}) until the last child has stopped.
    """

    def __init__(self, observer: _Observers, publisher: LogPublisher = globalLogPublisher) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._observer = observer
        self._publisher = publisher
        self._added = False

    def _add(self) -> None:
        if not self._added:
            self._publisher.addObserver(self._observer)
            self._added = True

    def _remove(self) -> None:
        if self._added:
            self._publisher.removeObserver(self._observer)
            self._added = False
        self._observer.close()

    def privilegedStartService(self) -> None:
        self._add()
        super().privilegedStartService()  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        self._add()
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> Deferred[object]:
        stopped: Deferred[object] = super().stopService()  # type: ignore[no-untyped-call]

        def remove(result: object) -> object:
            self._remove()
            return result

        return stopped.addBoth(remove)

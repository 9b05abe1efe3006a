# -*- test-case-name: tests.test_logs -*-
"""JSON-lines role logs: where they go, what a line holds, and when they are written."""

from __future__ import annotations

import io
import json
import os

from twisted.internet.defer import Deferred
from twisted.logger import LogEvent, LogPublisher, Logger, globalLogPublisher
from twisted.application.service import Service
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.logs import FILTERED, LogFileService, ReopeningFile, log_path, observer_for, set_level


def _lines(path: str) -> list[dict[str, object]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class _SlowStop(Service):
    """A child that logs while it stops, and stops when told to."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.done: Deferred[None] = Deferred()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.done.addCallback(lambda _: self.log.info("child stopped"))
        return self.done


class ObserverTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.config = default_config(self.root)

    def test_path_is_role_log_in_logging_directory(self) -> None:
        """A role's log is <logging.directory>/<role>.log, the directory defaulting to <config dir>/log."""
        self.assertEqual(log_path("smtp", self.config), os.path.join(self.root, "log", "smtp.log"))
        other = default_config(self.root, logging={"directory": "/var/log/postal"})
        self.assertEqual(log_path("cron", other), "/var/log/postal/cron.log")

    def test_event_is_one_json_line_with_its_fields(self) -> None:
        """Each event is one JSON object per line, with the named fields and the format kept apart."""
        observer = observer_for("worker", self.config)
        publisher = LogPublisher(observer)
        log = Logger(namespace="postal.test", observer=publisher)
        log.info("Delivered {message_id} to {mx_host}", message_id=42, mx_host="mx.example.com")
        log.warn("Second")
        observer.close()
        first, second = _lines(os.path.join(self.root, "log", "worker.log"))
        self.assertEqual(first["log_format"], "Delivered {message_id} to {mx_host}")
        self.assertEqual((first["message_id"], first["mx_host"]), (42, "mx.example.com"))
        self.assertEqual(first["log_namespace"], "postal.test")
        self.assertEqual(first["log_level"], {"__class_uuid__": "02e59486-f24d-46ad-8224-3acdf2a5732a", "name": "info"})
        self.assertEqual(second["log_format"], "Second")

    def test_text_on_stdout_when_asked(self) -> None:
        """With a stdout stream, the same event is also written as readable text."""
        out = io.StringIO()
        observer = observer_for("web", self.config, stdout=out)
        Logger(namespace="postal.test", observer=LogPublisher(observer)).info("Hello {who}", who="world")
        observer.close()
        self.assertIn("[postal.test#info] Hello world", out.getvalue())
        self.assertEqual(len(_lines(log_path("web", self.config))), 1)

    def test_logging_disabled_writes_no_file(self) -> None:
        """logging.enabled false: no file at all, text on stdout still."""
        config = default_config(self.root, logging={"enabled": False})
        out = io.StringIO()
        observer = observer_for("web", config, stdout=out)
        Logger(observer=LogPublisher(observer)).info("x")
        self.assertFalse(os.path.exists(os.path.join(self.root, "log")))
        self.assertIn("x", out.getvalue())


class LevelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.addCleanup(set_level, "info")

    def test_file_drops_events_below_the_level(self) -> None:
        """logging.level warn: the role's file gets warnings and errors, not info or debug."""
        config = default_config(self.root, logging={"level": "warn"})
        observer = observer_for("smtp", config)
        log = Logger(namespace="postal.test", observer=LogPublisher(observer))
        log.debug("d")
        log.info("i")
        log.warn("w")
        log.error("e")
        observer.close()
        self.assertEqual([line["log_format"] for line in _lines(log_path("smtp", config))], ["w", "e"])

    def test_debug_level_keeps_debug_events(self) -> None:
        config = default_config(self.root, logging={"level": "debug"})
        observer = observer_for("smtp", config)
        Logger(observer=LogPublisher(observer)).debug("d")
        observer.close()
        self.assertEqual([line["log_format"] for line in _lines(log_path("smtp", config))], ["d"])

    def test_filtered_loggers_stop_events_before_any_observer(self) -> None:
        """
        A Logger on FILTERED passes events at or above the level on to the
        global publisher (so to twistd's observer too) and drops the rest.
        """
        seen: list[LogEvent] = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        log = Logger(namespace="postal.test.filtered", observer=FILTERED)
        log.debug("hidden")
        log.info("shown")
        set_level("debug")
        log.debug("now shown")
        self.assertEqual([e["log_format"] for e in seen if e.get("log_namespace") == "postal.test.filtered"],
                         ["shown", "now shown"])


class ReopeningFileTests(SynchronousTestCase):
    def test_creates_missing_folders(self) -> None:
        """The first write creates the folder chain and the file."""
        path = os.path.join(self.mktemp(), "a", "b", "x.log")
        handle = ReopeningFile(path)
        handle.write("one\n")
        handle.close()
        with open(path) as f:
            self.assertEqual(f.read(), "one\n")

    def test_reopens_after_rotation(self) -> None:
        """After the file is moved away (or deleted), the next write starts a new file at the path."""
        path = os.path.join(self.mktemp(), "x.log")
        handle = ReopeningFile(path)
        handle.write("one\n")
        handle.flush()
        os.rename(path, path + ".1")
        handle.write("two\n")
        handle.flush()
        os.unlink(path)
        handle.write("three\n")
        handle.close()
        with open(path + ".1") as f:
            self.assertEqual(f.read(), "one\n")
        with open(path) as f:
            self.assertEqual(f.read(), "three\n")


class LogFileServiceTests(SynchronousTestCase):
    def test_file_receives_events_while_running_only(self) -> None:
        """
        Events reach log/<role>.log from privilegedStartService (when
        listeners bind) until the last child has finished stopping; not
        before, not after.
        """
        root = self.mktemp()
        config = default_config(root)
        publisher = LogPublisher()
        log = Logger(namespace="postal.test", observer=publisher)
        service = LogFileService(observer_for("cron", config), publisher)
        child = _SlowStop(log)
        child.setServiceParent(service)
        log.info("before")
        service.privilegedStartService()
        log.info("binding")
        service.startService()
        stopped = service.stopService()
        log.info("stopping")
        self.assertNoResult(stopped)
        child.done.callback(None)
        self.successResultOf(stopped)
        log.info("after")
        formats = [line["log_format"] for line in _lines(log_path("cron", config))]
        self.assertEqual(formats, ["binding", "stopping", "child stopped"])

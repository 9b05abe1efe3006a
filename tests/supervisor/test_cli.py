# -*- test-case-name: tests.supervisor.test_cli -*-
"""
C{postal logs} and the children's output files, in-process; C{start},
C{status}, C{restart} and C{stop} against real processes are in
L{tests.supervisor.test_processes}.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile

from twisted.logger import LogLevel, eventAsJSON
from twisted.trial.unittest import SynchronousTestCase

from postal.cli.main import main
from postal.supervisor.childlog import ChildOutputObserver


class LogsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="psv")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.config = os.path.join(self.folder, "postal.yml")
        with open(self.config, "w") as handle:
            handle.write("version: 2\n")
        os.makedirs(os.path.join(self.folder, "log"))

    def _postal(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--config", self.config], environ={}, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def _write(self, name: str, *lines: str) -> None:
        with open(os.path.join(self.folder, "log", name), "a") as handle:
            handle.writelines(line + "\n" for line in lines)

    def test_last_lines_as_text_or_json(self) -> None:
        """postal logs ROLE prints the last N JSON events as readable text, or as stored with --json."""
        events = [eventAsJSON({"log_format": "message {n}", "n": n, "log_time": 0.0, "log_level": LogLevel.info,
                               "log_namespace": "postal.x"}) for n in range(5)]
        self._write("worker.log", *events)
        code, out, err = self._postal("logs", "worker", "-n", "2")
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].endswith("[postal.x#info] message 3"), lines[0])
        code, out, _ = self._postal("logs", "worker", "-n", "1", "--json")
        self.assertEqual(json.loads(out)["n"], 4)

    def test_process_output_and_errors(self) -> None:
        """A process name shows its captured output as is; a missing log or a bad name is a one-line error."""
        self._write("worker-2.log", "Traceback (most recent call last):")
        self.assertEqual(self._postal("logs", "worker-2")[1], "Traceback (most recent call last):\n")
        code, _, err = self._postal("logs", "fast")
        self.assertEqual(code, 1)
        self.assertRegex(err, r"^postal: .*/log/fast.log: no such log yet\n$")
        code, _, err = self._postal("logs", "../etc/passwd")
        self.assertEqual((code, err), (1, "postal: '../etc/passwd' is not a role or process name\n"))


class ChildOutputTests(SynchronousTestCase):
    def test_lines_go_to_the_process_file_and_on(self) -> None:
        """Each child output line is appended to log/<process>.log and passed on to the supervisor's log."""
        folder = self.mktemp()
        forwarded: list[dict[str, object]] = []
        observer = ChildOutputObserver(folder, forwarded.append)
        observer({"log_format": "[{tag}] {line}", "tag": "smtp-2", "line": "Traceback", "stream": "stderr"})
        observer({"log_format": "other"})
        observer.close()
        with open(os.path.join(folder, "smtp-2.log")) as handle:
            self.assertEqual(handle.read(), "Traceback\n")
        self.assertEqual(len(forwarded), 2)

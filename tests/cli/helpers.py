# -*- test-case-name: tests.cli.test_main -*-
"""
Running C{postal} in-process against a temporary configuration and SQLite
database, with a fake clock, a L{FakeResolver} and scripted prompts.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Callable

import attrs
import yaml
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from postal.cli._context import Runtime
from postal.cli.main import main
from postal.testing import FakeResolver, Zone

__all__ = ["CLIResult", "CLIMixin", "CLITestCase", "wait_for_fired"]


def wait_for_fired(start: Callable[[], Deferred[Any]]) -> Any:
    """Run C{start} and return its result, which must already be there (fakes fire at once)."""
    outcome: list[Any] = []
    start().addBoth(outcome.append)
    if not outcome:
        raise AssertionError("the command waited for something the fakes never provide")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


#: postal.sqlite and signing.key as a fresh C{postal initialize} leaves them.
_TEMPLATE: dict[str, bytes] = {}


@attrs.frozen
class CLIResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class CLIMixin:
    """A fresh folder with C{postal.yml}; L{cli} calls L{main} with it."""

    mktemp: Any
    assertEqual: Any
    assertNotIn: Any

    def setUp(self) -> None:
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.config_path = os.path.join(self.folder, "postal.yml")
        self.write_config({"dns": {"mx_records": ["mx1.postal.test", "mx2.postal.test"]}})
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.zone = Zone()
        self.answers: list[str] = []
        self.interactive = False

    def write_config(self, groups: dict[str, Any]) -> None:
        with open(self.config_path, "w") as f:
            yaml.safe_dump({"version": 2, **groups}, f)

    def runtime(self) -> Runtime:
        return Runtime(
            clock=self.clock, resolver_for=lambda config: FakeResolver(self.zone), wait=wait_for_fired,
            interactive=self.interactive, ask=self._answer, ask_secret=self._answer,
        )

    def _answer(self, prompt: str) -> str:
        if not self.answers:
            raise AssertionError(f"unexpected prompt {prompt!r}")
        return self.answers.pop(0)

    def cli(self, *argv: str, environ: dict[str, str] | None = None, config: bool = True) -> CLIResult:
        """Run C{postal argv...} with C{--config} for this test's file unless C{config} is false."""
        out, err = io.StringIO(), io.StringIO()
        arguments = list(argv) + (["--config", self.config_path] if config else [])
        code = main(arguments, environ={} if environ is None else environ, stdout=out, stderr=err,
                     runtime=self.runtime())
        return CLIResult(code, out.getvalue(), err.getvalue())

    def ok(self, *argv: str) -> Any:
        """Run with C{--json}, expect success, return the JSON object."""
        result = self.cli(*argv, "--json")
        self.assertEqual((result.code, result.err), (0, ""), result)
        return result.json()

    def fails(self, code: int, *argv: str, **kwargs: Any) -> str:
        """Run, expect exit status C{code} and one line on stderr; return that line."""
        result = self.cli(*argv, **kwargs)
        self.assertEqual(result.code, code, result)
        self.assertEqual(result.out, "")
        self.assertEqual(result.err.count("\n"), 1, result.err)
        self.assertNotIn("Traceback", result.err)
        return result.err.strip()

    def initialize(self) -> None:
        """
        What C{postal initialize} makes, copied from a template made by the
        first call (migrating and generating a key each time is slow).
        """
        if not _TEMPLATE:
            self.ok("initialize")
            for name in ("postal.sqlite", "signing.key"):
                with open(os.path.join(self.folder, name), "rb") as f:
                    _TEMPLATE[name] = f.read()
            return
        for name, data in _TEMPLATE.items():
            with open(os.path.join(self.folder, name), "wb") as f:
                f.write(data)

    def make_server(self) -> str:
        """An initialized installation with organization acme and server acme/mail."""
        self.initialize()
        self.ok("org", "create", "Acme")
        self.ok("server", "create", "acme", "Mail")
        return "acme/mail"


class CLITestCase(CLIMixin, SynchronousTestCase):
    """L{CLIMixin} for tests that need no reactor."""

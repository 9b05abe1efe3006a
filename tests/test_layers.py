# -*- test-case-name: tests.test_layers -*-
"""
The layer and time rules, checked on the source (AST, nothing imported).

  1. Protocol (postal/smtp, postal/web, postal/tracking) never imports
     sqlalchemy, and imports postal.db only under C{if TYPE_CHECKING:} (to
     annotate the frozen records that cross the layers).
  2. Logic (postal/intake, postal/delivery, postal/webhooks,
     postal/outgoing) never imports sqlalchemy, the storage machinery
     (postal.db.schema, .pool, .migrate, ._rows) or any C{*_txn} function,
     and never imports protocol packages (postal.smtp, postal.web).  It
     reaches storage through zope interfaces it defines, implemented in
     postal/db and wired in postal/tap; it may use postal.db's frozen
     records as values.
  3. No module imports the global reactor at module level; only the
     composition roots (postal/tap, postal/cli) import it, inside functions.
  4. Nobody reads the wall clock (time.time, datetime.now/utcnow/today)
     outside postal/tap, postal/db/pool.py and postal/logs.py: everything
     else takes an injected IReactorTime.
  5. Nobody uses the legacy twisted.python.log.
"""

from __future__ import annotations

import ast
import os
from typing import Iterator

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROTOCOL = ("postal/smtp", "postal/web", "postal/tracking")
LOGIC = ("postal/intake", "postal/delivery", "postal/webhooks", "postal/outgoing")
COMPOSITION_ROOTS = ("postal/tap", "postal/cli")
CLOCK_ALLOWED = ("postal/tap", "postal/db/pool.py", "postal/logs.py")
STORAGE_MACHINERY = ("postal.db.schema", "postal.db.pool", "postal.db.migrate", "postal.db._rows")
WALL_CLOCK = {("time", "time"), ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
              ("date", "today")}


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class _Import:
    def __init__(self, module: str, names: list[str], line: int, in_function: bool, type_checking: bool) -> None:
        self.module, self.names, self.line = module, names, line
        self.in_function, self.type_checking = in_function, type_checking


def _imports(tree: ast.AST) -> Iterator[_Import]:
    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[_Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield _Import(alias.name, [], child.lineno, in_function, type_checking)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield _Import(child.module, [a.name for a in child.names], child.lineno, in_function, type_checking)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, True, type_checking)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for statement in child.body:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), in_function, True)
                for statement in child.orelse:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), in_function, type_checking)
            else:
                yield from visit(child, in_function, type_checking)

    yield from visit(tree, False, False)


def _wall_clock_calls(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (owner_name, node.func.attr) in WALL_CLOCK:
                yield node.lineno, f"{owner_name}.{node.func.attr}()"
        if isinstance(node, ast.ImportFrom) and node.module == "time" and any(a.name == "time" for a in node.names):
            yield node.lineno, "from time import time"


def violations(path: str, source: str) -> list[str]:
    """Every rule broken by the module at C{path} (relative to the repository)."""
    tree = ast.parse(source, path)
    found = []

    def add(line: int, message: str) -> None:
        found.append(f"{path}:{line}: {message}")

    for imp in _imports(tree):
        full_names = [imp.module] + [f"{imp.module}.{name}" for name in imp.names]
        if _under(path, PROTOCOL + LOGIC) and _is_under(imp.module, "sqlalchemy"):
            add(imp.line, f"protocol and logic code never import sqlalchemy ({imp.module})")
        if _under(path, PROTOCOL) and _is_under(imp.module, "postal.db") and not imp.type_checking:
            add(imp.line, f"protocol code imports postal.db only under TYPE_CHECKING ({imp.module})")
        if _under(path, LOGIC):
            if any(_is_under(name, m) for name in full_names for m in STORAGE_MACHINERY):
                add(imp.line, f"logic never imports the storage machinery ({imp.module})")
            if _is_under(imp.module, "postal.db") and any(name.endswith("_txn") for name in imp.names):
                add(imp.line, "logic never calls *_txn functions: use a store interface")
            if any(_is_under(name, p) for name in full_names for p in ("postal.smtp", "postal.web")):
                add(imp.line, f"logic never imports protocol code ({imp.module})")
        if "twisted.internet.reactor" in full_names:
            if not imp.in_function:
                add(imp.line, "the global reactor is imported at module level")
            elif not _under(path, COMPOSITION_ROOTS):
                add(imp.line, "only postal/tap and postal/cli may import the global reactor")
        if "twisted.python.log" in full_names:
            add(imp.line, "legacy twisted.python.log: use twisted.logger")
    if not _under(path, CLOCK_ALLOWED):
        for line, call in _wall_clock_calls(tree):
            add(line, f"reads the wall clock ({call}): take an injected IReactorTime")
    return found


def _modules() -> Iterator[str]:
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "postal")):
        for name in files:
            if name.endswith(".py"):
                yield os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")


class CheckerTests(SynchronousTestCase):
    """The checker itself catches what it is meant to catch."""

    def test_protocol_importing_storage(self) -> None:
        """sqlalchemy anywhere, or postal.db outside TYPE_CHECKING, is caught in protocol code."""
        source = ("from typing import TYPE_CHECKING\nimport sqlalchemy\nfrom postal.db.messages import Delivery\n"
                  "if TYPE_CHECKING:\n    from postal.db.api import MessageView\n")
        self.assertEqual([v.split(": ", 1)[0] for v in violations("postal/smtp/x.py", source)],
                         ["postal/smtp/x.py:2", "postal/smtp/x.py:3"])

    def test_logic_rules(self) -> None:
        """Logic may use records, but not txn functions, machinery, sqlalchemy or protocol modules."""
        source = ("from postal.db.messages import NewTransaction\n"
                  "from postal.db.messages import store_transaction_txn\n"
                  "from postal.db import schema\n"
                  "from sqlalchemy.engine import Connection\n"
                  "from postal.smtp.replies import R250_OK\n"
                  "from postal import web\n")
        lines = [v.split(": ", 1)[0].rsplit(":", 1)[1] for v in violations("postal/intake/x.py", source)]
        self.assertEqual(lines, ["2", "3", "4", "5", "6"])

    def test_reactor_rules(self) -> None:
        """Module-level reactor imports are caught everywhere; function-level ones outside tap and cli."""
        module_level = "from twisted.internet import reactor\n"
        in_function = "def f():\n    from twisted.internet import reactor\n"
        self.assertEqual(len(violations("postal/tap/x.py", module_level)), 1)
        self.assertEqual(violations("postal/tap/x.py", in_function), [])
        self.assertEqual(violations("postal/cli/x.py", in_function), [])
        self.assertEqual(len(violations("postal/delivery/x.py", in_function)), 1)
        self.assertEqual(len(violations("postal/health.py", "import twisted.internet.reactor\n")), 1)

    def test_wall_clock(self) -> None:
        """time.time(), datetime.now(), datetime.datetime.utcnow() and date.today() are caught outside the allowed files."""
        source = ("import time, datetime\nfrom time import time as t\n"
                  "a = time.time()\nb = datetime.datetime.now()\nc = datetime.datetime.utcnow()\n"
                  "d = datetime.date.today()\ne = time.perf_counter()\n")
        self.assertEqual(len(violations("postal/cron/x.py", source)), 5)
        self.assertEqual(violations("postal/tap/x.py", source), [])
        self.assertEqual(violations("postal/logs.py", source), [])

    def test_legacy_log(self) -> None:
        """twisted.python.log is caught however it is imported."""
        self.assertEqual(len(violations("postal/x.py", "from twisted.python import log\n")), 1)
        self.assertEqual(len(violations("postal/x.py", "import twisted.python.log\n")), 1)


class LayerRuleTests(SynchronousTestCase):
    def test_source_follows_the_rules(self) -> None:
        """Every module under postal/ follows the layer, reactor, clock and logging rules."""
        found = []
        modules = sorted(_modules())
        self.assertIn("postal/config.py", modules)
        for path in modules:
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                found.extend(violations(path, f.read()))
        self.assertEqual(found, [], "\n" + "\n".join(found))

    def test_tac_follows_the_reactor_rule(self) -> None:
        """postal.tac does not import the global reactor at all: twistd provides it."""
        with open(os.path.join(ROOT, "postal.tac"), encoding="utf-8") as f:
            source = f.read()
        self.assertNotIn("reactor", [name for imp in _imports(ast.parse(source)) for name in imp.names])

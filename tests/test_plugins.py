# -*- test-case-name: tests.test_plugins -*-
"""
The twistd plugins: one per role, found by twistd, each a real role.

Every C{twisted/plugins/postal_<role>.py} is a single C{ServiceMaker} whose
tapname is C{postal-<role>} and whose module (C{postal.tap.<role>})
provides C{Options} and C{makeService}; there is no
C{twisted/plugins/__init__.py}, which would hide Twisted's own plugins.
"""

from __future__ import annotations

import ast
import os

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

import twisted.plugins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(ROOT, "twisted", "plugins")
ROLES = {"web", "smtp", "worker", "cron", "requeuer", "fast", "supervisor"}


def _plugin_files() -> dict[str, str]:
    """tapname -> file name, for every postal_*.py plugin file in the repository."""
    return {
        "postal-" + name[len("postal_"):-len(".py")].replace("_", "-"): name
        for name in sorted(os.listdir(PLUGINS))
        if name.startswith("postal_") and name.endswith(".py")
    }


def _makers() -> dict[str, IServiceMaker]:
    return {maker.tapname: maker for maker in getPlugins(IServiceMaker, twisted.plugins)
            if maker.tapname.startswith("postal-")}


class PluginTests(SynchronousTestCase):
    def test_no_init_in_plugins_folder(self) -> None:
        """twisted/plugins has no __init__.py (and neither has twisted/)."""
        self.assertTrue(os.path.isdir(PLUGINS))
        self.assertFalse(os.path.exists(os.path.join(PLUGINS, "__init__.py")))
        self.assertFalse(os.path.exists(os.path.join(ROOT, "twisted", "__init__.py")))

    def test_every_plugin_file_is_found_by_twistd(self) -> None:
        """Each postal_<role>.py file is a plugin twistd finds as postal-<role>, and there are no others."""
        self.assertEqual(sorted(_makers()), sorted(_plugin_files()))
        self.assertLessEqual({tapname[len("postal-"):] for tapname in _plugin_files()}, ROLES)

    def test_twistd_lists_every_role(self) -> None:
        """twistd's own option parser (what --help prints) has a sub-command for each plugin."""
        commands = {name for name, _short, _options, _doc in ServerOptions().subCommands}
        self.assertLessEqual(set(_plugin_files()), commands)

    def test_each_plugin_is_a_real_role(self) -> None:
        """Each plugin's module has Options (parsing --config) and makeService: no placeholder roles."""
        for tapname, maker in _makers().items():
            module = __import__(maker.module, fromlist=["makeService"])
            self.assertTrue(callable(getattr(module, "makeService", None)), tapname)
            options = maker.options()
            self.assertIsInstance(options, usage.Options, tapname)
            options.parseOptions(["--config", "/etc/postal/postal.yml"])
            self.assertEqual(options["config"], "/etc/postal/postal.yml", tapname)
            self.assertEqual(maker.module, "postal.tap." + tapname[len("postal-"):], tapname)

    def test_plugin_files_only_build_a_service_maker(self) -> None:
        """A plugin file imports only ServiceMaker and assigns one ServiceMaker(...): no logic at plugin scan time."""
        for tapname, name in _plugin_files().items():
            with open(os.path.join(PLUGINS, name), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            statements = [node for node in tree.body
                          if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
            imports = [node for node in statements if isinstance(node, (ast.Import, ast.ImportFrom))]
            assigns = [node for node in statements if isinstance(node, ast.Assign)]
            self.assertEqual([ast.unparse(node) for node in imports],
                             ["from twisted.application.service import ServiceMaker"], tapname)
            self.assertEqual(len(assigns), 1, tapname)
            self.assertEqual(len(statements), 2, tapname)
            call = assigns[0].value
            self.assertTrue(isinstance(call, ast.Call) and ast.unparse(call.func) == "ServiceMaker", tapname)

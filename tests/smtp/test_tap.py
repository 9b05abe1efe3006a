# -*- test-case-name: tests.smtp.test_tap -*-
"""The postal-smtp tap: the service tree it builds from the configuration."""

from __future__ import annotations

import tempfile

from twisted.application.service import IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.application.service import IServiceMaker
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.db.pool import SynchronousDatabasePool
from postal.tap import smtp as tap
from tests.dbhelpers import sqlite_engine
from tests.smtp.certs import write_test_certificate


class BuildTests(SynchronousTestCase):
    def build(self, **smtp_server: object) -> IServiceCollection:
        folder = tempfile.mkdtemp()
        if smtp_server.pop("tls", False):
            cert, key = write_test_certificate(folder)
            smtp_server.update(tls_enabled=True, tls_certificate_path=cert, tls_private_key_path=key)
        config = default_config(folder, smtp_server={"default_port": 2525, "default_bind_address": "127.0.0.1",
                                                     **smtp_server})
        pool = SynchronousDatabasePool(sqlite_engine(self))
        service = tap.build(config, MemoryReactorClock(), pool)
        return IServiceCollection(service)

    def names(self, service: IServiceCollection) -> list[str]:
        return sorted(child.name for child in service)  # type: ignore[attr-defined]

    def test_plain_listener(self) -> None:
        """Without TLS there is one listener, on the configured port."""
        service = self.build()
        self.assertEqual(self.names(service), ["smtp-listener"])
        listener = service.getServiceNamed("smtp-listener")
        self.assertEqual(listener.endpoint._port, 2525)  # type: ignore[attr-defined]

    def test_tls_listeners(self) -> None:
        """With TLS and tls_port there is also an implicit-TLS listener and a SIGHUP reloader."""
        service = self.build(tls=True, tls_port=4650)
        self.assertEqual(self.names(service), ["smtp-listener", "smtps-listener", "tls-reload"])

    def test_proxy_protocol(self) -> None:
        """proxy_protocol wraps the listener's endpoint in the PROXY protocol parser."""
        service = self.build(proxy_protocol=True)
        factory = service.getServiceNamed("smtp-listener").factory  # type: ignore[attr-defined]
        self.assertEqual(type(factory).__name__, "ProxyWrappingFactory")

    def test_plugin(self) -> None:
        """postal-smtp is a twistd plugin whose options take --config."""
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        self.assertIn("postal-smtp", makers)
        options = makers["postal-smtp"].options()
        options.parseOptions(["--config", "/x/postal.yml"])
        self.assertEqual(options["config"], "/x/postal.yml")

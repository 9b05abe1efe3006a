# -*- test-case-name: tests.supervisor.test_sockets -*-
"""
Ports checked before start-up (L{check_ports}, L{bind_shared}) and the role
side of shared listeners (L{listen_description}), over real sockets.
"""

from __future__ import annotations

import os
import socket

from twisted.trial.unittest import SynchronousTestCase

from postal.supervisor.inherited import listen_description
from postal.supervisor.plan import Listener, PortUse
from postal.supervisor.sockets import PortUnavailable, bind_shared, check_ports


def _taken(test: SynchronousTestCase) -> int:
    """A port on 127.0.0.1 that a socket listens on for the rest of the test."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    test.addCleanup(holder.close)
    port: int = holder.getsockname()[1]
    return port


def _free() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


class CheckPortsTests(SynchronousTestCase):
    def test_a_taken_port_is_named_by_its_key(self) -> None:
        """A port another process listens on fails the check with the key, port and reason."""
        port = _taken(self)
        error = self.assertRaises(PortUnavailable, check_ports,
                                  [PortUse("127.0.0.1", port, "smtp_server.default_port")])
        self.assertEqual(str(error), f"smtp_server.default_port: port {port} on 127.0.0.1 is already in use")

    def test_free_ports_pass_and_stay_free(self) -> None:
        """Free ports pass the check and are released again (port 0 is skipped)."""
        port = _free()
        check_ports([PortUse("127.0.0.1", port, "worker.health_port"), PortUse("127.0.0.1", 0, "fast.http_port")])
        check_ports([PortUse("127.0.0.1", port, "worker.health_port")])

    def test_two_keys_on_one_port(self) -> None:
        """Two keys naming one port fail the check, naming both keys."""
        port = _free()
        error = self.assertRaises(PortUnavailable, check_ports, [
            PortUse("127.0.0.1", port, "worker.health_port"), PortUse("127.0.0.1", port, "cron.health_port")])
        self.assertEqual(str(error), f"cron.health_port: port {port} on 127.0.0.1 is also worker.health_port")

    def test_bind_shared_binds_or_releases_everything(self) -> None:
        """bind_shared returns listening sockets by name; when one port is taken it closes the others and says which."""
        port = _free()
        bound = bind_shared([Listener("smtp", "127.0.0.1", port, "smtp_server.default_port")])
        self.addCleanup(bound["smtp"].close)
        self.assertEqual(bound["smtp"].getsockname(), ("127.0.0.1", port))
        other, taken = _free(), _taken(self)
        error = self.assertRaises(PortUnavailable, bind_shared, [
            Listener("web", "127.0.0.1", other, "web_server.default_port"),
            Listener("web-tls", "127.0.0.1", taken, "web_server.tls_port")])
        self.assertIn("web_server.tls_port", str(error))
        check_ports([PortUse("127.0.0.1", other, "web_server.default_port")])


class ListenDescriptionTests(SynchronousTestCase):
    def test_fallback_without_inherited_sockets(self) -> None:
        """Outside the supervisor (no LISTEN_* variables) the role's own description is used."""
        self.assertEqual(listen_description("smtp", "tcp:25", {}), "tcp:25")

    def test_inherited_socket_by_name(self) -> None:
        """An inherited socket of that name, for this pid, gives a systemd: endpoint with its address family."""
        sock = socket.socket(socket.AF_INET6)
        self.addCleanup(sock.close)
        # Inherited descriptors are numbered from 3: put the socket on 4, the second name's.
        _borrow_descriptor(self, 4, sock.fileno())
        environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "smtp:smtps"}
        self.assertEqual(listen_description("smtps", "tcp:465", environ), "systemd:domain=INET6:name=smtps")
        self.assertEqual(listen_description("web", "tcp:5000", environ), "tcp:5000")
        other = dict(environ, LISTEN_PID="1")
        self.assertEqual(listen_description("smtps", "tcp:465", other), "tcp:465")


def _borrow_descriptor(test: SynchronousTestCase, target: int, source: int) -> None:
    """Make C{target} a copy of C{source} for the test, restoring what C{target} was."""
    try:
        saved: int | None = os.dup(target)
    except OSError:
        saved = None
    os.dup2(source, target)

    def restore() -> None:
        if saved is None:
            os.close(target)
        else:
            os.dup2(saved, target)
            os.close(saved)

    test.addCleanup(restore)

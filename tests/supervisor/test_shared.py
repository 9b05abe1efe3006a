# -*- test-case-name: tests.supervisor.test_shared -*-
"""
Several processes on one port: L{RoleMonitor} binds the listener once and
two real twistd children adopt it through C{LISTEN_FDS}/C{LISTEN_FDNAMES}
(the C{systemd:} endpoint, as L{postal.supervisor.inherited} describes);
both hold the one socket, and the port keeps serving while one of them is
dead.  The children are twistd's own C{web} plugin, a role that already
takes an endpoint description.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from postal.supervisor.monitor import RoleMonitor
from postal.supervisor.plan import ChildSpec, Listener, RestartPolicy, SupervisorPlan, twistd_command
from postal.supervisor.sockets import bind_shared
from postal.supervisor.status import http_probe
from tests.supervisor.processes import alive, eventually, free_port


def _holds(pid: int, target: str) -> bool:
    """Whether process C{pid} has a descriptor open on C{target} (C{socket:[inode]})."""
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            if os.readlink(os.path.join(folder, fd)) == target:
                return True
        except OSError:
            continue
    return False


class SharedListenerTests(TestCase):
    timeout = 90

    async def test_two_processes_accept_on_one_socket(self) -> None:
        """Both children hold the supervisor's listening socket, and the port serves while one is down."""
        folder = tempfile.mkdtemp(prefix="psv")
        self.addCleanup(shutil.rmtree, folder, True)
        with open(os.path.join(folder, "index.html"), "w") as handle:
            handle.write("shared")
        listener = Listener("web", "127.0.0.1", free_port(), "web_server.default_port")
        args = (*twistd_command(), "--nodaemon", "--pidfile=", "web",
                "--listen", "systemd:domain=INET:name=web", "--path", folder)
        children = tuple(ChildSpec(f"web-{n}", "web", n, args, (), None, (listener,)) for n in (1, 2))
        # A long threshold and delay keep a killed child down while we check the other serves.
        policy = RestartPolicy(threshold=600.0, min_delay=600.0, max_delay=600.0, kill_time=5.0)
        plan = SupervisorPlan(children=children, ports=(), shared=(listener,), skipped=(), policy=policy)
        shared = bind_shared([listener])
        monitor = RoleMonitor(reactor, plan, shared, os.path.join(folder, "log"),
                              environ={"PATH": os.environ.get("PATH", "/bin"), "PYTHONPATH": os.pathsep.join(sys.path)})
        monitor.startService()
        self.addCleanup(monitor.stopService)
        url = f"http://127.0.0.1:{listener.port}/"
        probe = http_probe(reactor)

        async def serving() -> bool:
            return all(monitor.pid(c.name) for c in children) and (await probe(url)).get("status") == 200

        await eventually(serving, 45.0, "both children to serve")
        inode = f"socket:[{os.fstat(shared['web'].fileno()).st_ino}]"
        first, second = monitor.pid("web-1"), monitor.pid("web-2")
        assert first is not None and second is not None
        # Each child adopts the socket (the endpoint moves it off fd 3) once started.
        async def both_hold() -> bool:
            return _holds(first, inode) and _holds(second, inode)

        await eventually(both_hold, 30.0, "both children to hold the shared socket")

        os.kill(first, signal.SIGKILL)

        async def first_gone() -> bool:
            return monitor.pid("web-1") is None and not alive(first)

        await eventually(first_gone, 10.0, "web-1 to exit")
        for _ in range(5):
            self.assertEqual(await probe(url), {"status": 200, "body": "shared"})

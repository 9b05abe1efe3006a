# -*- test-case-name: tests.supervisor.test_plan -*-
"""
L{postal.supervisor.plan}: which processes the supervisor runs, with which
command lines, environment overrides, health URLs and ports; and the
restart policy L{RoleMonitor} gives L{ProcessMonitor}.
"""

from __future__ import annotations

import os
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.config import default_config
from postal.supervisor.monitor import RoleMonitor, child_arguments, child_environment
from postal.supervisor.plan import (
    CHILD_LOGGER, HEALTH_PORT_STEP, PortUse, RestartPolicy, make_plan, process_counts,
)

ALL = ("web", "smtp", "worker", "cron", "requeuer", "fast")


def _config(**processes: int) -> object:
    return default_config("/srv/postal", processes=processes,
                          smtp_server={"default_port": 2525, "default_bind_address": "127.0.0.1"})


class CountTests(SynchronousTestCase):
    def test_defaults_run_one_of_each_available_role(self) -> None:
        """With default counts every installed role runs once; roles without a plugin are left out."""
        counts = process_counts(default_config("/srv"), ["smtp", "cron", "web"])
        self.assertEqual(counts, {"web": 1, "smtp": 1, "cron": 1})

    def test_single_active_roles_are_capped_at_one(self) -> None:
        """cron and requeuer run once however many are configured; other roles run as many as asked."""
        config = default_config("/srv", processes={"cron": 3, "requeuer": 2, "worker": 4, "smtp": 2})
        counts = process_counts(config, ALL)
        self.assertEqual((counts["cron"], counts["requeuer"], counts["worker"], counts["smtp"]), (1, 1, 4, 2))

    def test_zero_turns_a_role_off(self) -> None:
        """processes.<role>: 0 leaves the role out of the plan."""
        config = default_config("/srv", processes={"web": 0, "fast": 0})
        self.assertNotIn("web", process_counts(config, ALL))
        plan = make_plan(config, ALL)
        self.assertEqual([c.role for c in plan.children], ["smtp", "worker", "cron", "requeuer"])
        self.assertEqual(plan.skipped, ())


class CommandLineTests(SynchronousTestCase):
    def test_child_runs_twistd_in_the_foreground_without_a_pid_file(self) -> None:
        """A child is this interpreter's twistd -n with an empty --pidfile, the quiet logger, its plugin and the absolute config path."""
        config = default_config("/srv/postal", processes={"worker": 1})
        plan = make_plan(config, ["worker"])
        [child] = plan.children
        self.assertEqual(child.name, "worker")
        self.assertEqual(child.args[0], sys.executable)
        self.assertEqual(list(child.args[-6:]), ["--nodaemon", "--pidfile=", f"--logger={CHILD_LOGGER}",
                                                 "postal-worker", "--config", "/srv/postal/postal.yml"])
        self.assertIn(("POSTAL_CONFIG_FILE_PATH", "/srv/postal/postal.yml"), child.env)

    def test_children_start_through_the_launcher(self) -> None:
        """The spawned argv is python -m postal.supervisor.launch followed by the child's command."""
        [child] = make_plan(default_config("/srv"), ["cron"]).children
        self.assertEqual(child_arguments(child)[:3], [sys.executable, "-m", "postal.supervisor.launch"])
        self.assertEqual(child_arguments(child)[3:], list(child.args))

    def test_instances_are_numbered_and_get_their_own_health_port(self) -> None:
        """Several processes of a role are <role>-<n>; instance n answers health on the role's port + 100(n-1) set through the environment."""
        plan = make_plan(default_config("/srv", processes={"worker": 3}), ["worker"])
        self.assertEqual([c.name for c in plan.children], ["worker-1", "worker-2", "worker-3"])
        self.assertEqual([c.health_url for c in plan.children],
                         [f"http://127.0.0.1:{9090 + HEALTH_PORT_STEP * n}/health" for n in range(3)])
        self.assertNotIn("WORKER_HEALTH_PORT", dict(plan.children[0].env))
        self.assertEqual(dict(plan.children[2].env)["WORKER_HEALTH_PORT"], "9290")
        smtp = make_plan(default_config("/srv", processes={"smtp": 2}), ["smtp"]).children
        self.assertEqual(dict(smtp[1].env)["SMTP_SERVER_HEALTH_PORT"], "9191")

    def test_web_health_is_its_own_port(self) -> None:
        """The web role's health URL is /health on the web listener (127.0.0.1 for a wildcard bind)."""
        config = default_config("/srv", web_server={"default_port": 5080, "default_bind_address": "::"})
        [web] = make_plan(config, ["web"]).children
        self.assertEqual(web.health_url, "http://127.0.0.1:5080/health")


class PortTests(SynchronousTestCase):
    def test_single_processes_bind_their_own_ports(self) -> None:
        """A role run once binds its own listener: the plan lists its ports, none shared."""
        config = default_config("/srv", processes={"smtp": 1}, smtp_server={"default_port": 2525})
        plan = make_plan(config, ["smtp"])
        self.assertEqual(plan.shared, ())
        self.assertIn(PortUse("::", 2525, "smtp_server.default_port"), plan.ports)
        self.assertIn(PortUse("127.0.0.1", 9091, "smtp_server.health_port"), plan.ports)
        self.assertEqual(plan.children[0].listeners, ())

    def test_several_processes_share_the_public_listener(self) -> None:
        """With processes.smtp: 2 the SMTP port is one shared listener named smtp, inherited by both processes."""
        config = default_config("/srv", processes={"smtp": 2},
                                smtp_server={"default_port": 2525, "default_bind_address": "127.0.0.1"})
        plan = make_plan(config, ["smtp"])
        [listener] = plan.shared
        self.assertEqual((listener.name, listener.interface, listener.port), ("smtp", "127.0.0.1", 2525))
        self.assertEqual([c.listeners for c in plan.children], [(listener,), (listener,)])
        self.assertEqual([u for u in plan.ports if u.port == 2525],
                         [PortUse("127.0.0.1", 2525, "smtp_server.default_port", shared=True)])

    def test_inheriting_child_environment_names_its_sockets(self) -> None:
        """A child with shared listeners gets LISTEN_FDS and LISTEN_FDNAMES; stale LISTEN_* variables are dropped."""
        config = default_config("/srv", processes={"smtp": 2}, smtp_server={
            "tls_enabled": True, "tls_port": 4650, "default_port": 2525})
        child = make_plan(config, ["smtp"]).children[0]
        env = child_environment(child, {"PATH": "/bin", "LISTEN_PID": "1", "LISTEN_FDS": "9"})
        self.assertEqual((env["LISTEN_FDS"], env["LISTEN_FDNAMES"]), ("2", "smtp:smtps"))
        self.assertNotIn("LISTEN_PID", env)
        self.assertEqual((env["PATH"], env["POSTAL_SUPERVISOR_PID"]), ("/bin", str(os.getpid())))


class PolicyTests(SynchronousTestCase):
    def test_monitor_uses_the_restart_policy(self) -> None:
        """RoleMonitor sets ProcessMonitor's threshold, killTime and restart delays from the plan's policy."""
        policy = RestartPolicy(threshold=2.0, min_delay=0.5, max_delay=30.0, kill_time=7.0)
        plan = make_plan(default_config("/srv"), ["cron"], policy)
        monitor = RoleMonitor(Clock(), plan, {}, self.mktemp())
        self.assertEqual((monitor.threshold, monitor.minRestartDelay, monitor.maxRestartDelay, monitor.killTime),
                         (2.0, 0.5, 30.0, 7.0))

    def test_default_back_off(self) -> None:
        """By default a child dying within 5s backs off from 1s doubling to at most 60s, and gets 20s to stop."""
        self.assertEqual(RestartPolicy(), RestartPolicy(threshold=5.0, min_delay=1.0, max_delay=60.0, kill_time=20.0))

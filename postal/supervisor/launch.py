# -*- test-case-name: tests.supervisor.test_monitor -*-
"""
C{python -m postal.supervisor.launch PROGRAM ARGS...}: how the supervisor
starts each child.  Before C{exec}ing the child it

  - moves it into its own process group, so a Ctrl-C in the supervisor's
    terminal reaches only the supervisor, which then stops the children in
    order (a child signalled twice logs a spurious C{ReactorNotRunning});
  - asks Linux to send it SIGTERM when the supervisor dies
    (C{PR_SET_PDEATHSIG}), so a killed supervisor leaves no orphans;
  - sets C{LISTEN_PID} to the child's own pid when it inherits sockets
    (C{LISTEN_FDS}), which only the child itself can know.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent(expected_parent: str | None) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if expected_parent and str(os.getppid()) != expected_parent:
        raise SystemExit(1)  # the supervisor died before prctl took effect


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m postal.supervisor.launch PROGRAM [ARGS...]")
    os.setpgid(0, 0)
    _die_with_parent(os.environ.get("POSTAL_SUPERVISOR_PID"))
    if "LISTEN_FDS" in os.environ:
        os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

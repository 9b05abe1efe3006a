# -*- test-case-name: tests.supervisor -*-
"""
The supervisor: every configured role as its own child C{twistd} process
under L{twisted.runner.procmon.ProcessMonitor}, restarted with back-off when
it dies, with shared listening sockets, per-child output files and a control
socket for C{postal status} and C{postal restart}.
"""

__all__: list[str] = []

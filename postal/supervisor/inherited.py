# -*- test-case-name: tests.supervisor.test_inherited -*-
"""
The role side of shared listeners: a role that may run as several
processes asks L{listen_description} for its endpoint description.  When
the process inherited a listening socket of that name (from the supervisor,
or from systemd socket activation: the same C{LISTEN_FDS}/C{LISTEN_PID}/
C{LISTEN_FDNAMES} protocol) it gets Twisted's C{systemd:} endpoint for it,
so every process of the role accepts on the one socket; otherwise it gets
its usual C{tcp:} description back and binds the port itself.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

from twisted.python.systemd import ListenFDs

__all__ = ["listen_description"]


def _family_name(fileno: int) -> str:
    probe = socket.socket(fileno=fileno)
    try:
        return "INET6" if probe.family == socket.AF_INET6 else "INET"
    finally:
        probe.detach()  # the descriptor stays open for the endpoint


def _process_inheritance() -> ListenFDs:
    """
    What this process inherited.  Importing C{twisted.internet.endpoints}
    reads C{LISTEN_*} once and clears them from the environment, so ask the
    C{systemd:} endpoint parser for what it captured: the very descriptors
    the endpoint we describe will adopt.
    """
    from twisted.internet import endpoints

    captured = getattr(getattr(endpoints, "_SystemdParser", None), "_sddaemon", None)
    if isinstance(captured, ListenFDs):
        return captured
    return ListenFDs.fromEnvironment(os.environ)


def listen_description(name: str, fallback: str, environ: Mapping[str, str] | None = None) -> str:
    """
    C{systemd:domain=INET|INET6:name=<name>} when a listening socket named
    C{name} was inherited by this process, else C{fallback}.
    """
    inherited = _process_inheritance() if environ is None else ListenFDs.fromEnvironment(environ)
    fileno = inherited.inheritedNamedDescriptors().get(name)
    if fileno is None:
        return fallback
    return f"systemd:domain={_family_name(fileno)}:name={name}"

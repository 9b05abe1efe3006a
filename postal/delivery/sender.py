# -*- test-case-name: tests.delivery.test_sender -*-
"""
Sending one message over SMTP with reused connections, and classifying
the outcome with Postal's statuses and detail texts (postal-behaviour.md
section 5.1).

L{SMTPSender} keeps idle sessions per destination domain for
C{idle_timeout} seconds, so consecutive batches to one domain share
connections (Postal shares them only within one batch).  Callers bound
how many sessions run per destination.
"""

from __future__ import annotations

import re
from typing import Sequence

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from postal.delivery.mx import (
    NoSuchDomain, NullMX, Relay, Target, TemporaryLookupFailure, resolve_targets,
)
from postal.delivery.session import (
    EndpointFactory, MessageFailed, SessionOpenFailed, SessionSettings, SMTPSession, TLSFailed, open_session,
)
from postal.delivery.smtp_client import Reply
from postal.dns import IResolver
from postal.tokens import log_id as new_log_id

__all__ = ["SendResult", "SMTPSender", "retry_hint"]

log = Logger()

_SECONDS = re.compile(r"(\d+) seconds")
_MINUTES = re.compile(r"(\d+) minutes")


@attrs.frozen
class SendResult:
    status: str  # Sent, SoftFail or HardFail
    details: str
    output: str = ""
    sent_with_ssl: bool = False
    log_id: str | None = None
    #: Seconds until the retry when the remote said so ("try again in N minutes").
    retry_in: float | None = None

    @property
    def retry(self) -> bool:
        return self.status == "SoftFail"


def retry_hint(text: str) -> float | None:
    """Postal's reading of a reply: "N seconds" waits N+10 s, "N minutes" N*60+10 s."""
    match = _SECONDS.search(text)
    if match:
        return int(match.group(1)) + 10
    match = _MINUTES.search(text)
    if match:
        return int(match.group(1)) * 60 + 10
    return None


@attrs.define
class _Idle:
    session: SMTPSession
    log_id: str
    timer: IDelayedCall


@attrs.define
class SMTPSender:
    """Delivers messages to their domains' MX hosts (or the relays)."""

    _clock: IReactorTime
    _resolver: IResolver
    _endpoint_factory: EndpointFactory
    _helo_hostname: str
    _read_timeout: float = 30.0
    _idle_timeout: float = 10.0
    _relays: Sequence[Relay] = ()
    _trust_root: object | None = None
    _mx_port: int = 25
    _idle: dict[str, list[_Idle]] = attrs.field(factory=dict)

    def _settings(self, ssl_mode: str) -> SessionSettings:
        return SessionSettings(helo_hostname=self._helo_hostname, ssl_mode=ssl_mode,
                               read_timeout=self._read_timeout, trust_root=self._trust_root)

    def _take_idle(self, domain: str) -> tuple[SMTPSession, str] | None:
        idle = self._idle.get(domain, [])
        while idle:
            entry = idle.pop()
            if entry.timer.active():
                entry.timer.cancel()
            if entry.session.usable:
                return entry.session, entry.log_id
        return None

    def _put_idle(self, domain: str, session: SMTPSession, log_id: str) -> None:
        if not session.usable:
            return
        entries = self._idle.setdefault(domain, [])
        entry = _Idle(session, log_id, self._clock.callLater(self._idle_timeout, self._expire, domain, session))
        entries.append(entry)

    def _expire(self, domain: str, session: SMTPSession) -> None:
        entries = self._idle.get(domain, [])
        self._idle[domain] = [e for e in entries if e.session is not session]
        if not self._idle[domain]:
            del self._idle[domain]
        self._quit(session)

    def _quit(self, session: SMTPSession) -> Deferred[None]:
        d = Deferred.fromCoroutine(session.quit())
        d.addErrback(lambda f: log.failure("QUIT failed", f))
        return d

    def close_idle(self) -> Deferred[list[None]]:
        """Close every idle session (shutdown); fires when they are all closed."""
        idle, self._idle = self._idle, {}
        closing = []
        for entries in idle.values():
            for entry in entries:
                if entry.timer.active():
                    entry.timer.cancel()
                closing.append(self._quit(entry.session))
        return gatherResults(closing)

    async def _open(self, targets: list[Target]) -> tuple[SMTPSession | None, list[str]]:
        errors: list[str] = []
        for target in targets:
            modes = [target.ssl_mode] + (["None"] if target.ssl_mode == "Auto" else [])
            for mode in modes:
                try:
                    session = await open_session(self._clock, self._endpoint_factory, target.hostname,
                                                 target.address, target.port, self._settings(mode))
                    return session, errors
                except TLSFailed as e:
                    errors.append(str(e))
                    continue
                except SessionOpenFailed as e:
                    errors.append(str(e))
                    break
        return None, errors

    async def _session_for(self, domain: str, allow_idle: bool) -> tuple[SMTPSession, str, bool] | SendResult:
        """An idle session (reused=True) or a new one, or the result that ends the attempt."""
        idle = self._take_idle(domain) if allow_idle else None
        if idle is not None:
            return idle[0], idle[1], True
        try:
            targets = await resolve_targets(self._resolver, domain, self._relays, self._mx_port)
        except (NoSuchDomain, NullMX) as e:
            return SendResult("HardFail", f"Domain {domain} does not accept mail.", output=str(e))
        except TemporaryLookupFailure as e:
            return SendResult("SoftFail", f"DNS lookup for {domain} failed. The message will be retried.",
                              output=str(e))
        session, errors = await self._open(targets)
        if session is None:
            hosts = list(dict.fromkeys(t.hostname for t in targets))
            tried = f" Tried {_sentence(hosts)}." if hosts else " No hosts to try."
            return SendResult("SoftFail", f"No SMTP servers were available for {domain}.{tried}",
                              output="\n".join(errors))
        return session, new_log_id(), False

    async def send(self, domain: str, mail_from: str, rcpt_to: str, data: bytes) -> SendResult:
        """Deliver one message to C{rcpt_to}; never raises for remote failures."""
        for attempt in range(2):
            got = await self._session_for(domain, allow_idle=attempt == 0)
            if isinstance(got, SendResult):
                return got
            session, log_id, reused = got
            try:
                reply = await session.deliver(mail_from, rcpt_to, data)
            except MessageFailed as e:
                if reused and not e.data_sent:
                    continue  # a stale idle connection: once more on a fresh one
                return SendResult("SoftFail", f"An error occurred while sending the message to {session.label}",
                                  output=str(e), sent_with_ssl=session.tls, log_id=log_id)
            self._put_idle(domain, session, log_id)
            return _classify(reply, rcpt_to, session, log_id)
        raise AssertionError("unreachable")  # pragma: no cover


def _classify(reply: Reply, rcpt_to: str, session: SMTPSession, log_id: str) -> SendResult:
    output = str(reply)
    if reply.positive:
        return SendResult("Sent", f"Message for {rcpt_to} accepted by {session.label}", output=output,
                          sent_with_ssl=session.tls, log_id=log_id)
    if 400 <= reply.code < 500:
        return SendResult("SoftFail", f"Temporary SMTP delivery error when sending to {session.label}",
                          output=output, sent_with_ssl=session.tls, log_id=log_id, retry_in=retry_hint(output))
    return SendResult("HardFail", f"Permanent SMTP delivery error when sending to {session.label}",
                      output=output, sent_with_ssl=session.tls, log_id=log_id)


def _sentence(items: list[str]) -> str:
    """Ruby's C{to_sentence}: C{a}, C{a and b}, C{a, b, and c}."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]

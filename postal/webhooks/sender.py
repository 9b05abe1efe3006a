# -*- test-case-name: tests.webhooks.test_sender -*-
"""
The webhook sender: a service that leases due webhook requests from the
queue, posts each (signed, 5 s timeout, basic auth from the URL's
userinfo) with at most C{concurrency} in flight, and records every attempt.
Any 2xx is success; otherwise the request is retried on Postal's schedule
until its sixth attempt.  It sleeps between polls and can be woken.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from postal.webhooks.interfaces import IWebhookQueue
from postal.webhooks.payloads import webhook_body
from postal.webhooks.retry import retry_delay
from postal.webhooks.signing import RequestSigner
from postal.webhooks.values import AttemptOutcome, WebhookRequest

__all__ = ["WebhookSender", "HTTPClient", "split_userinfo", "TIMEOUT_CODE", "SOCKET_ERROR_CODE"]

log = Logger()

#: Postal's internal codes for attempts that got no HTTP status.
TIMEOUT_CODE = -1
SOCKET_ERROR_CODE = -2
_BODY_LIMIT = 64 * 1024


def _timed_out(result: object, timeout: float) -> object:
    """Whatever the cancelled request failed with, it failed by timing out."""
    raise TimeoutError(f"no complete response in {timeout} seconds")


class HTTPClient(Protocol):
    """The part of treq's API the sender uses (treq itself, or StubTreq in tests)."""

    def request(self, method: str, url: str, **kwargs: Any) -> Deferred[Any]: ...


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """C{http://u:p@host/x} to C{(http://host/x, (u, p))}; no userinfo gives no auth."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username), unquote(parts.password or ""))


@attrs.define(eq=False)
class WebhookSender(Service):
    """Claims and sends webhook requests; see the module docstring."""

    _queue: IWebhookQueue
    _http: Any  # treq.client.HTTPClient, or StubTreq in tests
    _clock: IReactorTime
    _signer: RequestSigner
    _holder: str
    _user_agent: str
    concurrency: int = 20
    poll_interval: float = 5.0
    lease_seconds: float = 120.0
    timeout: float = 5.0
    #: Called last on stop: closes the HTTP client's kept-alive connections.
    close_connections: Callable[[], Deferred[Any]] | None = None
    _in_flight: set[Deferred[None]] = attrs.field(factory=set, init=False)
    _claiming: bool = attrs.field(default=False, init=False)
    _again: bool = attrs.field(default=False, init=False)
    _poll: IDelayedCall | None = attrs.field(default=None, init=False)
    _to_record: list[tuple[AttemptOutcome, Deferred[bool]]] = attrs.field(factory=list, init=False)
    _recording: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self.name = "webhook-sender"

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.wake()

    def stopService(self) -> Deferred[None]:  # type: ignore[override]
        super().stopService()  # type: ignore[no-untyped-call]
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None

        async def drain() -> None:
            for d in list(self._in_flight):
                await d
            await self._queue.release(self._holder)
            if self.close_connections is not None:
                await self.close_connections()

        return Deferred.fromCoroutine(drain())

    def wake(self) -> None:
        """Look for due requests now (new ones were queued)."""
        if not self.running:
            return
        if self._claiming:
            self._again = True  # claim again once this claim lands: it may predate the new rows
            return
        free = self.concurrency - len(self._in_flight)
        if free <= 0 or (self._in_flight and free < self.concurrency // 2):
            # Claim in batches: one claim transaction per freed slot would
            # cost a commit per request.
            return
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None
        self._claiming = True
        d = self._queue.claim(self._clock.seconds(), self._holder, self.lease_seconds, free)
        d.addCallbacks(lambda requests: self._claimed(requests, free), self._claim_failed)

    def _schedule_poll(self) -> None:
        if self.running and (self._poll is None or not self._poll.active()):
            self._poll = self._clock.callLater(self.poll_interval, self.wake)

    def _claim_failed(self, failure: Any) -> None:
        self._claiming = False
        self._again = False
        log.failure("Could not claim webhook requests", failure)
        self._schedule_poll()

    def _claimed(self, requests: list[WebhookRequest], asked: int) -> None:
        self._claiming = False
        again, self._again = self._again, False
        for request in requests:
            d = Deferred.fromCoroutine(self._send(request))
            self._in_flight.add(d)
            d.addBoth(self._finished, d)
        if again:
            self.wake()
        if len(requests) < asked:
            self._schedule_poll()

    def _finished(self, result: object, d: Deferred[None]) -> None:
        self._in_flight.discard(d)
        if isinstance(result, Failure):
            log.failure("Webhook attempt could not be recorded", result)
        self.wake()

    async def _exchange(self, url: str, body: bytes, headers: dict[bytes, list[bytes]],
                        auth: tuple[str, str] | None) -> tuple[int, str]:
        response = await self._http.request(
            "POST", url, data=body, headers=headers, auth=auth, allow_redirects=False)
        text = (await response.content())[:_BODY_LIMIT].decode("utf-8", "replace")
        return int(response.code), text

    async def _post(self, request: WebhookRequest) -> tuple[int, str | None]:
        """One attempt: the status code and response body, or Postal's negative code."""
        body = webhook_body(request.event, request.created_at, request.payload, request.uuid)
        headers = {b"Content-Type": [b"application/json"], b"User-Agent": [self._user_agent.encode()]}
        headers.update({name: [value] for name, value in self._signer.headers(body).items()})
        url, auth = split_userinfo(request.url)
        exchange = Deferred.fromCoroutine(self._exchange(url, body, headers, auth))
        # One deadline for the response and its body, on the injected clock.
        exchange.addTimeout(self.timeout, self._clock, onTimeoutCancel=_timed_out)
        try:
            return await exchange
        except (TimeoutError, ConnectTimeoutError) as e:
            return TIMEOUT_CODE, str(e)
        except Exception as e:
            return SOCKET_ERROR_CODE, f"{type(e).__name__}: {e}"

    async def _send(self, request: WebhookRequest) -> None:
        code, body = await self._post(request)
        succeeded = 200 <= code < 300
        attempt = request.attempts + 1
        delay = None if succeeded else retry_delay(attempt)
        now = self._clock.seconds()
        log.info("Webhook {event} {uuid} to {url}: attempt {attempt} got {code}",
                 event=request.event, uuid=request.uuid, url=split_userinfo(request.url)[0],
                 attempt=attempt, code=code)
        await self._record(AttemptOutcome(
            request_id=request.id, holder=self._holder, status_code=code, body=body,
            retry_at=None if delay is None else now + delay,
            error=None if succeeded else f"Couldn't send to URL. Code received was {code}",
            succeeded=succeeded,
        ))

    def _record(self, outcome: AttemptOutcome) -> Deferred[bool]:
        """
        Record an attempt; attempts finishing while a recording transaction
        is in flight are recorded together in the next one (group commit).
        """
        d: Deferred[bool] = Deferred()
        self._to_record.append((outcome, d))
        self._flush_records()
        return d

    def _flush_records(self) -> None:
        if self._recording or not self._to_record:
            return
        batch, self._to_record = self._to_record, []
        self._recording = True
        d = self._queue.finish(self._clock.seconds(), [outcome for outcome, _ in batch])

        def done(results: list[bool]) -> None:
            for (_, waiting), result in zip(batch, results):
                waiting.callback(result)

        def failed(failure: Failure) -> None:
            for _, waiting in batch:
                waiting.errback(failure)

        def next_batch(_: object) -> None:
            self._recording = False
            self._flush_records()

        d.addCallbacks(done, failed).addBoth(next_batch)

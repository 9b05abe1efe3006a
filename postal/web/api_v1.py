# -*- test-case-name: tests.web.test_api_v1 -*-
"""
Postal's HTTP API v1 (api-contract.md section 3): four endpoints accepting
GET, POST, PUT and PATCH, always answering HTTP 200 with Postal's envelope,
whatever the input.  Plus C{GET /.well-known/jwks.json}.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, ClassVar

import attrs
from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from postal.outgoing.errors import MessageNotFound
from postal.outgoing.submission import APIMessages
from postal.web.envelope import RequestTooLarge, encode_json, error, error_for, success
from postal.web.params import (
    expansions_param, message_id_param, parse_params, send_message_request, send_raw_request,
)
from postal.web.serialize import deliveries_data, message_data, send_result_data

__all__ = ["APIv1", "API_METHODS"]

log = Logger()

API_METHODS = ["GET", "POST", "PUT", "PATCH"]

_Action = Callable[[Any, dict[str, Any], IRequest], Awaitable[Any]]


def _body(request: IRequest, limit: int) -> bytes:
    if getattr(request, "body_too_large", False):
        raise RequestTooLarge(limit)
    content = request.content
    if content is None:
        return b""
    content.seek(0, 2)
    if content.tell() > limit:
        raise RequestTooLarge(limit)
    content.seek(0)
    return bytes(content.read())


def _client_ip(request: IRequest) -> str:
    return str(getattr(request.getClientAddress(), "host", "127.0.0.1"))


@attrs.define(eq=False)
class APIv1:
    """The API, holding the logic it calls and the public signing key document."""

    _messages: APIMessages
    _clock: IReactorTime
    _jwks: dict[str, Any]
    _max_request_size: int = 32 * 1024 * 1024
    app: ClassVar[Klein] = Klein()

    def _respond(self, request: IRequest, document: dict[str, Any]) -> bytes:
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return encode_json(document)

    async def _handle(self, request: IRequest, action: _Action, raw_send: bool = False) -> bytes:
        started = self._clock.seconds()

        def elapsed() -> float:
            return max(0.0, self._clock.seconds() - started)

        params: dict[str, Any] = {}
        try:
            body = _body(request, self._max_request_size)
            session = await self._messages.authenticate(
                (request.getHeader(b"x-server-api-key") or b"").decode("utf-8", "replace") or None)
            params = parse_params(
                (request.getHeader(b"content-type") or b"").decode("latin-1"), body,
                request.uri.partition(b"?")[2], request.args or {},
            )
            data = await action(session, params, request)
        except MessageNotFound:
            return self._respond(request, error(
                elapsed(), "MessageNotFound", message="No message found matching provided ID", id=params.get("id")))
        except Exception as e:
            document = error_for(e, elapsed(), raw_send=raw_send)
            if document is None:
                log.failure("API request to {path} failed", path=request.path.decode("latin-1"))
                document = error(elapsed(), "InternalError", message="An internal error occurred")
            return self._respond(request, document)
        return self._respond(request, success(elapsed(), data))

    @app.route("/api/v1/send/message", methods=API_METHODS)
    def send_message(self, request: IRequest) -> Deferred[bytes]:
        async def action(session: Any, params: dict[str, Any], request: IRequest) -> Any:
            result = await self._messages.send_message(session, send_message_request(params), _client_ip(request))
            return send_result_data(result)

        return Deferred.fromCoroutine(self._handle(request, action))

    @app.route("/api/v1/send/raw", methods=API_METHODS)
    def send_raw(self, request: IRequest) -> Deferred[bytes]:
        async def action(session: Any, params: dict[str, Any], request: IRequest) -> Any:
            return send_result_data(await self._messages.send_raw(session, send_raw_request(params)))

        return Deferred.fromCoroutine(self._handle(request, action, raw_send=True))

    @app.route("/api/v1/messages/message", methods=API_METHODS)
    def message(self, request: IRequest) -> Deferred[bytes]:
        async def action(session: Any, params: dict[str, Any], request: IRequest) -> Any:
            message_id = message_id_param(params)
            expansions = expansions_param(params)
            view = await self._messages.message(
                session, message_id,
                with_raw=bool(expansions - {"status", "details", "inspection", "activity_entries"}),
                with_activity="activity_entries" in expansions,
            )
            return message_data(view, expansions)

        return Deferred.fromCoroutine(self._handle(request, action))

    @app.route("/api/v1/messages/deliveries", methods=API_METHODS)
    def deliveries(self, request: IRequest) -> Deferred[bytes]:
        async def action(session: Any, params: dict[str, Any], request: IRequest) -> Any:
            return deliveries_data(await self._messages.deliveries(session, message_id_param(params)))

        return Deferred.fromCoroutine(self._handle(request, action))

    @app.route("/.well-known/jwks.json", methods=["GET", "HEAD"])
    def jwks(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return encode_json(self._jwks)

# -*- test-case-name: tests.web.test_tap -*-
"""
The web role's site: the API (a Klein resource) with C{/health} and
C{/metrics} beside it, and requests that stop buffering a body once it
passes the configured maximum, so an oversized request costs neither memory
nor disk and is still answered inside the API envelope.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

__all__ = ["body_limited_request_factory", "WebRoot", "web_site"]


def body_limited_request_factory(max_body: int) -> type[Request]:
    """A Request class that drops body bytes past C{max_body} and says so."""

    class BodyLimitedRequest(Request):
        body_too_large = False
        _body_seen = 0

        def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
            # The API reads form fields itself (only C{params} matters), which
            # spares every POST Twisted's Content-Type parsing.
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(channel, *args, **kwargs)  # type: ignore[no-untyped-call]

        def gotLength(self, length: int | None) -> None:
            if length is not None and length > max_body:
                self.body_too_large = True
                length = 0
            super().gotLength(length)  # type: ignore[no-untyped-call]

        def handleContentChunk(self, data: bytes) -> None:
            self._body_seen += len(data)
            if self._body_seen > max_body:
                self.body_too_large = True
            if self.body_too_large:
                return
            super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    return BodyLimitedRequest


class WebRoot(Resource):
    """C{/health} and C{/metrics} from the health resource; every other path to the app."""

    def __init__(self, app: IResource, health: Resource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._app = app
        self._health = health

    def getChild(self, path: bytes, request: Any) -> IResource:
        if path in (b"health", b"metrics"):
            return self._health.getChildWithDefault(path, request)  # type: ignore[no-any-return]
        # Give the segment back: the Klein resource routes on the whole path.
        request.postpath.insert(0, request.prepath.pop())
        return self._app

    def render(self, request: Any) -> Any:
        return self._app.render(request)


class _QuietSite(Site):
    """No access log line per request: at API rates it costs more than the request."""

    def log(self, request: Any) -> None:
        pass


def web_site(app: IResource, health: Resource, max_body: int) -> Site:
    site = _QuietSite(WebRoot(app, health))  # type: ignore[no-untyped-call]
    site.requestFactory = body_limited_request_factory(max_body)  # type: ignore[assignment]
    site.displayTracebacks = False
    site.noisy = False
    return site

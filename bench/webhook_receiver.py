"""
A webhook receiver for the benchmark: answers every POST with 200 and
counts them.  Usage: python bench/webhook_receiver.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site


class Counter(Resource):
    isLeaf = True
    count = 0

    def render_POST(self, request: Any) -> bytes:
        Counter.count += 1
        return b"ok"

    def render_GET(self, request: Any) -> bytes:
        return str(Counter.count).encode()


class QuietSite(Site):
    def log(self, request: Any) -> None:
        pass


reactor.listenTCP(int(sys.argv[1]), QuietSite(Counter()), interface="127.0.0.1")  # type: ignore[attr-defined]
reactor.run()  # type: ignore[attr-defined]

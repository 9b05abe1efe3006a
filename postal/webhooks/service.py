# -*- test-case-name: tests.webhooks.test_end_to_end -*-
"""
Building the webhook sender for a role's service tree (the worker role, or
the all-in-one process): the signing key and treq over a persistent
connection pool, working from the queue the caller gives it (the tap layer
passes L{postal.db.webhook_requests.SQLWebhookQueue}).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import treq
from twisted.web.client import Agent, HTTPConnectionPool

from postal._version import __version__
from postal.config import PostalConfig
from postal.keys import ensure_signing_key
from postal.webhooks.interfaces import IWebhookQueue
from postal.webhooks.sender import WebhookSender
from postal.webhooks.signing import signer_from_file

__all__ = ["build_webhook_sender", "WEBHOOK_CONCURRENCY"]

#: Webhook requests in flight at once per process.
WEBHOOK_CONCURRENCY = 50


#: The webhook sender polls at the worker's interval, but not more often than this.
WEBHOOK_MIN_POLL_SECONDS = 1.0


def build_webhook_sender(config: PostalConfig, reactor: Any, queue: IWebhookQueue) -> WebhookSender:
    """The webhook sender service (named C{webhook-sender}) working from C{queue}."""
    key_path = config.postal.signing_key_path or os.path.join(config.root, "signing.key")
    ensure_signing_key(key_path)
    connections = HTTPConnectionPool(reactor, persistent=True)
    connections.maxPersistentPerHost = WEBHOOK_CONCURRENCY
    http = treq.client.HTTPClient(Agent(reactor, pool=connections))
    return WebhookSender(
        queue=queue,
        http=http,
        clock=reactor,
        signer=signer_from_file(key_path),
        holder=f"{socket.gethostname()}:{os.getpid()}:webhooks",
        user_agent=f"Postal/{__version__}",
        concurrency=WEBHOOK_CONCURRENCY,
        # The worker wakes it after queueing requests; polls find only those
        # others queued (cron's notices) and retries come due, so a worker
        # polling SQLite many times a second does not make it do the same.
        poll_interval=max(config.worker.poll_interval, WEBHOOK_MIN_POLL_SECONDS),
        close_connections=connections.closeCachedConnections,
    )

# -*- test-case-name: tests.webhooks.test_sender -*-
"""
The queue the webhook sender works from; L{postal.db.webhook_requests.SQLWebhookQueue}
implements it over the database pool.
"""

from __future__ import annotations

from typing import Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

from postal.webhooks.values import AttemptOutcome, WebhookRequest

__all__ = ["IWebhookQueue"]


class IWebhookQueue(Interface):
    def claim(now: float, holder: str, lease_seconds: float, limit: int) -> Deferred[list[WebhookRequest]]:
        """Lease up to C{limit} due requests to C{holder}."""

    def finish(now: float, outcomes: Sequence[AttemptOutcome]) -> Deferred[list[bool]]:
        """
        Log attempts and delete or reschedule their requests, in one
        transaction (False for an attempt whose lease was lost).
        """

    def release(holder: str) -> Deferred[int]:
        """Give back C{holder}'s leases."""

# -*- test-case-name: tests.webhooks.test_sender -*-
"""
The values the webhook sender and its queue (L{postal.webhooks.interfaces.IWebhookQueue})
exchange: a leased request, and what one attempt did.
"""

from __future__ import annotations

import attrs

__all__ = ["WebhookRequest", "AttemptOutcome"]


@attrs.frozen
class WebhookRequest:
    """A queued request; C{payload} is the JSON text stored when the event fired."""

    id: int
    uuid: str
    server_id: int
    webhook_id: int | None
    url: str
    event: str
    payload: str
    attempts: int
    created_at: float


@attrs.frozen
class AttemptOutcome:
    """
    What one attempt did.  C{retry_at} None means the request is finished
    (delivered, or out of attempts); C{status_code} is negative for network
    errors, as Postal records them.
    """

    request_id: int
    holder: str
    status_code: int
    body: str | None
    retry_at: float | None
    error: str | None
    succeeded: bool

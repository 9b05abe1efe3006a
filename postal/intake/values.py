# -*- test-case-name: tests.intake.test_recipients -*-
"""
The values intake logic works with.  The storage layer builds them from its
own records, so logic never depends on SQLAlchemy types.  What intake
stores it hands over as the store's own frozen records
(L{postal.db.messages.NewTransaction}), as the API's submission does.
"""

from __future__ import annotations

import attrs

__all__ = [
    "ServerInfo", "CredentialInfo", "EndpointRef", "RouteInfo", "DomainInfo",
    "AcceptedRecipient",
]


@attrs.frozen
class ServerInfo:
    """What intake needs to know about a mail server."""

    id: int
    organization_id: int
    path: str  # org/server
    token: str
    suspended: bool
    privacy_mode: bool = False
    allow_sender: bool = False
    log_smtp_data: bool = False


@attrs.frozen
class CredentialInfo:
    """An SMTP or SMTP-IP credential and the server it belongs to."""

    id: int
    type: str
    key: str
    hold: bool
    server: ServerInfo


@attrs.frozen
class EndpointRef:
    type: str | None
    id: int | None


@attrs.frozen
class RouteInfo:
    """A route: where mail for C{name@domain_name} goes."""

    id: int
    name: str
    token: str
    mode: str  # Endpoint, Accept, Hold, Bounce, Reject
    domain_name: str | None
    server: ServerInfo
    endpoints: tuple[EndpointRef, ...] = (EndpointRef(None, None),)


@attrs.frozen
class DomainInfo:
    id: int
    name: str
    use_for_any: bool = False


@attrs.frozen
class AcceptedRecipient:
    """
    A recipient RCPT TO accepted, and how its message rows will look.

    C{credential} is set for outgoing mail (also after an SMTP-IP match, which
    authenticates the session); C{route} for incoming mail; C{bounce} for mail
    to a return path.
    """

    rcpt_to: str
    scope: str  # outgoing or incoming
    server: ServerInfo
    credential: CredentialInfo | None = None
    route: RouteInfo | None = None
    bounce: bool = False

    @property
    def kind(self) -> str:
        """Postal's metric label: outgoing, incoming or bounce."""
        return "bounce" if self.bounce else self.scope

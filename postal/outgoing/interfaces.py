# -*- test-case-name: tests.web.test_api_v1 -*-
"""
The storage the HTTP API's logic talks to; L{postal.db.api.SQLAPIStore}
implements it over the database pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

if TYPE_CHECKING:  # records only: the store module implements this interface
    from postal.db.api import APISession, MessageView
    from postal.db.messages import Delivery, NewTransaction, StoredMessage

__all__ = ["IAPIStore"]


class IAPIStore(Interface):
    """Lookups by API key and message id, and the durable store."""

    def session_for_key(key: str, now: float, touch: bool) -> Deferred[APISession | None]:
        """The API credential with C{key}, its server and sending domains (C{touch}: record its use)."""

    def store_transactions(
        now: float, transactions: Sequence[NewTransaction],
    ) -> Deferred[list[list[StoredMessage]]]:
        """
        Store every transaction in one database transaction, recording the
        use of the credentials they name; fires only after commit.
        """

    def message_view(
        server_id: int, message_id: int, with_raw: bool, with_activity: bool,
    ) -> Deferred[MessageView | None]:
        """A message of the server, or None."""

    def deliveries(server_id: int, message_id: int) -> Deferred[list[Delivery] | None]:
        """A message's deliveries oldest first, or None when there is no such message."""

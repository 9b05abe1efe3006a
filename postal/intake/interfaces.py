# -*- test-case-name: tests.intake.test_sql_store -*-
"""
The storage interface intake logic talks to.  The SQL implementation is
L{postal.db.intake.SQLIntakeStore}; tests may use it over a synchronous pool.
"""

from __future__ import annotations

from typing import Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

from postal.db.messages import NewTransaction
from postal.intake.values import CredentialInfo, DomainInfo, RouteInfo, ServerInfo

__all__ = ["IIntakeStore"]


class IIntakeStore(Interface):
    """
    Lookups the SMTP server makes per session and recipient, and the durable
    store.  Lookups may answer from a short-lived cache; the store never does.
    """

    def smtp_credential_by_key(key: str) -> Deferred[CredentialInfo | None]:
        """The SMTP credential with this key (AUTH PLAIN/LOGIN)."""

    def smtp_credentials_for_server(path: str) -> Deferred[list[CredentialInfo]]:
        """The SMTP credentials of server C{org/server} (CRAM-MD5)."""

    def smtp_ip_credential_for(address: str) -> Deferred[CredentialInfo | None]:
        """The most specific SMTP-IP credential whose network holds C{address}."""

    def server_by_token(token: str) -> Deferred[ServerInfo | None]:
        """The server whose token is C{token} (return-path mail)."""

    def route_by_token(token: str) -> Deferred[RouteInfo | None]:
        """The route whose token is C{token} (route-domain mail)."""

    def route_for_address(name: str, domain: str) -> Deferred[RouteInfo | None]:
        """The route for C{name@domain}: exact name first, then C{*}; global."""

    def return_path_route(server_id: int) -> Deferred[RouteInfo | None]:
        """The server's C{__returnpath__} route, if it has one."""

    def verified_domains(server: ServerInfo) -> Deferred[list[DomainInfo]]:
        """Verified domains of the server and of its organization."""

    def touch_credential(credential_id: int, now: float) -> Deferred[None]:
        """Record that a credential was used."""

    def store_transactions(
        now: float, transactions: Sequence[NewTransaction],
    ) -> Deferred[list[list[str]]]:
        """
        Store every transaction (raw message, message rows, queue rows) in
        one database transaction; fires with each one's message tokens
        only after the commit.
        """

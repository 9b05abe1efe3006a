# -*- test-case-name: tests.intake.test_recipients -*-
"""
RCPT TO classification in Postal's order (postal-behaviour.md section 4.3):
return path, route domain, authenticated relay, route by address (exact,
then wildcard), SMTP-IP credential, otherwise authentication required.
"""

from __future__ import annotations

import attrs

from postal.intake.errors import (
    AUTHENTICATION_REQUIRED, INVALID_ROUTE_TOKEN, INVALID_SERVER_TOKEN, ROUTE_REJECTED,
    SERVER_SUSPENDED, RecipientRejected,
)
from postal.intake.interfaces import IIntakeStore
from postal.intake.values import AcceptedRecipient, CredentialInfo, RouteInfo, ServerInfo

__all__ = ["RecipientClassifier", "split_address", "Classification"]


def split_address(address: str) -> tuple[str, str | None, str]:
    """C{local+tag@domain} to C{(local, tag, domain)}; the domain in lower case."""
    local_part, _, domain = address.rpartition("@")
    name, plus, tag = local_part.partition("+")
    return name, (tag if plus else None), domain.lower()


@attrs.frozen
class Classification:
    """The accepted recipient, and the credential an SMTP-IP match authenticated."""

    recipient: AcceptedRecipient
    authenticated_by_ip: CredentialInfo | None = None


@attrs.frozen
class RecipientClassifier:
    """Decides what a recipient is, consulting the store (cached) as Postal does."""

    _store: IIntakeStore
    _return_path_domain: str
    _route_domain: str
    _custom_return_path_prefix: str

    def _is_return_path(self, domain: str) -> bool:
        return domain == self._return_path_domain.lower() or domain.startswith(
            self._custom_return_path_prefix.lower() + ".")

    async def classify(
        self, rcpt_to: str, credential: CredentialInfo | None, client_ip: str,
    ) -> Classification:
        """
        @raise RecipientRejected: with Postal's reason for refusing it.
        """
        name, tag, domain = split_address(rcpt_to)
        if self._is_return_path(domain):
            return Classification(await self._bounce(rcpt_to, name))
        if domain == self._route_domain.lower():
            return Classification(await self._route_by_token(name, tag))
        if credential is not None:
            return Classification(_outgoing(rcpt_to, credential))
        route = await self._store.route_for_address(name, domain)
        if route is not None:
            return Classification(_incoming(rcpt_to, route))
        by_ip = await self._store.smtp_ip_credential_for(client_ip)
        if by_ip is None:
            raise RecipientRejected(AUTHENTICATION_REQUIRED)
        return Classification(_outgoing(rcpt_to, by_ip), authenticated_by_ip=by_ip)

    async def _bounce(self, rcpt_to: str, token: str) -> AcceptedRecipient:
        server = await self._store.server_by_token(token)
        if server is None:
            raise RecipientRejected(INVALID_SERVER_TOKEN)
        _check_live(server)
        route = await self._store.return_path_route(server.id)
        return AcceptedRecipient(rcpt_to=rcpt_to, scope="incoming", server=server,
                                 route=route, bounce=True)

    async def _route_by_token(self, token: str, tag: str | None) -> AcceptedRecipient:
        route = await self._store.route_by_token(token)
        if route is None:
            raise RecipientRejected(INVALID_ROUTE_TOKEN)
        local = route.name + (f"+{tag}" if tag else "")
        rewritten = f"{local}@{route.domain_name}" if route.domain_name else local
        return _incoming(rewritten, route)


def _check_live(server: ServerInfo) -> None:
    if server.suspended:
        raise RecipientRejected(SERVER_SUSPENDED)


def _outgoing(rcpt_to: str, credential: CredentialInfo) -> AcceptedRecipient:
    _check_live(credential.server)
    return AcceptedRecipient(rcpt_to=rcpt_to, scope="outgoing", server=credential.server,
                             credential=credential)


def _incoming(rcpt_to: str, route: RouteInfo) -> AcceptedRecipient:
    _check_live(route.server)
    if route.mode == "Reject":
        raise RecipientRejected(ROUTE_REJECTED)
    return AcceptedRecipient(rcpt_to=rcpt_to, scope="incoming", server=route.server, route=route)

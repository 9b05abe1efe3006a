# -*- test-case-name: tests.intake.test_recipients -*-
"""Recipient classification in Postal's order, against the SQL store."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from postal.db.credentials import create_credential_txn
from postal.intake.errors import RecipientRejected
from postal.intake.recipients import Classification, split_address
from tests.dbhelpers import migrated_pool
from tests.smtp.fixtures import RETURN_PATH_DOMAIN, ROUTE_DOMAIN, make_account, make_intake


class ClassifyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pool = migrated_pool(self)
        self.account = make_account(self.pool, ip_network="10.1.0.0/16")
        self.clock = Clock()
        self.intake = make_intake(self.pool, self.clock)

    def classify(self, rcpt: str, credential: Any = None, ip: str = "192.0.2.1") -> Classification:
        return self.successResultOf(self.intake.classify(rcpt, credential, ip))

    def rejected(self, rcpt: str, credential: Any = None, ip: str = "192.0.2.1") -> str:
        failure = self.failureResultOf(self.intake.classify(rcpt, credential, ip), RecipientRejected)
        return str(failure.value.reason)

    def test_split_address(self) -> None:
        """The +tag is split off the local part and the domain lower-cased."""
        self.assertEqual(split_address("Name+tag@Example.COM"), ("Name", "tag", "example.com"))

    def test_return_path(self) -> None:
        """Mail to <server token>@<return path domain> is an incoming bounce for that server."""
        found = self.classify(f"{self.account.server_token}@{RETURN_PATH_DOMAIN}").recipient
        self.assertEqual((found.scope, found.bounce, found.server.id), ("incoming", True, self.account.server_id))

    def test_custom_return_path(self) -> None:
        """psrp.<domain> is a return path too; an unknown token is invalid."""
        self.assertTrue(self.classify(f"{self.account.server_token}@psrp.example.com").recipient.bounce)
        self.assertEqual(self.rejected("nosuch@psrp.example.com"), "invalid-server-token")

    def test_route_token(self) -> None:
        """<route token>@<route domain> is rewritten to the route's address, keeping the tag."""
        found = self.classify(f"{self.account.route_token}+abc@{ROUTE_DOMAIN}").recipient
        self.assertEqual((found.rcpt_to, found.route.id if found.route else None),
                         ("support+abc@in.example.net", self.account.route_id))
        self.assertEqual(self.rejected(f"unknown@{ROUTE_DOMAIN}"), "invalid-route-token")

    def test_authenticated_relay_before_routes(self) -> None:
        """An authenticated session relays to any address, even a route's."""
        credential = self.successResultOf(self.intake.authenticate_key("SmtpKey0123456789abcdefX"))
        found = self.classify("support@in.example.net", credential).recipient
        self.assertEqual((found.scope, found.credential), ("outgoing", credential))

    def test_route_exact_then_wildcard(self) -> None:
        """Route lookup prefers the exact name, then *; the +tag is ignored for lookup."""
        exact = self.classify("support+x@in.example.net").recipient
        self.assertEqual(exact.route.id if exact.route else None, self.account.route_id)
        other = self.classify("anyone@IN.example.net").recipient
        self.assertEqual(other.route.id if other.route else None, self.account.wildcard_route_id)

    def test_reject_route(self) -> None:
        """A route in Reject mode refuses mail."""
        self.assertEqual(self.rejected("spam@in.example.net"), "route-rejected")

    def test_smtp_ip(self) -> None:
        """A client inside an SMTP-IP network relays and becomes authenticated."""
        result = self.classify("b@gmail.test", ip="10.1.2.3")
        self.assertEqual(result.recipient.scope, "outgoing")
        self.assertIsNotNone(result.authenticated_by_ip)
        self.assertEqual(self.classify("b@gmail.test", ip="::ffff:10.1.2.3").recipient.scope, "outgoing")

    def test_otherwise_authentication_required(self) -> None:
        """Anything else needs authentication."""
        self.assertEqual(self.rejected("b@gmail.test"), "authentication-required")

    def test_lookups_are_cached(self) -> None:
        """A new SMTP-IP credential is seen once the short cache has expired."""
        self.assertEqual(self.rejected("b@gmail.test", ip="172.16.0.1"), "authentication-required")
        self.pool.call("cred", create_credential_txn, 1.0, self.account.server_id, "SMTP-IP", None, "172.16.0.0/12")
        self.assertEqual(self.rejected("b@gmail.test", ip="172.16.0.1"), "authentication-required")
        self.clock.advance(11)
        self.assertEqual(self.classify("b@gmail.test", ip="172.16.0.1").recipient.scope, "outgoing")

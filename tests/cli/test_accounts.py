# -*- test-case-name: tests.cli.test_accounts -*-
"""C{postal make-user}, C{org create} and C{server create}."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, select

from postal.db import schema
from postal.passwords import verify_password
from tests.cli.helpers import CLITestCase

USER = ("--email", "Ann@Example.com", "--first-name", "Ann", "--last-name", "Smith")


class MakeUserTests(CLITestCase):
    """C{postal make-user}."""

    def setUp(self) -> None:
        super().setUp()
        self.initialize()

    def stored_user(self) -> tuple[str, bool, str]:
        engine = create_engine("sqlite:///" + os.path.join(self.folder, "postal.sqlite"))
        self.addCleanup(engine.dispose)
        with engine.connect() as conn:
            row = conn.execute(select(schema.users)).one()
        return row.email_address, row.admin, row.password_digest

    def test_from_options(self) -> None:
        """All fields as options: the user is created with a salted password digest, not the password."""
        data = self.ok("make-user", *USER, "--password", "correct horse", "--admin")
        self.assertEqual(list(data), ["uuid"])
        email, admin, digest = self.stored_user()
        self.assertEqual((email, admin), ("ann@example.com", True))
        self.assertNotIn("correct horse", digest)
        self.assertTrue(verify_password("correct horse", digest))

    def test_not_admin_by_default(self) -> None:
        """Without --admin the user is an ordinary user."""
        self.assertIn("Created user ann@example.com", self.cli("make-user", *USER, "--password", "password1").out)
        self.assertFalse(self.stored_user()[1])

    def test_prompts_on_terminal(self) -> None:
        """On a terminal, missing fields are asked for (the password through the secret prompt)."""
        self.interactive = True
        self.answers = ["Bob", "pass word 2"]
        self.ok("make-user", "--email", "bob@example.com", "--last-name", "Jones")
        self.assertEqual(self.answers, [])
        self.assertTrue(verify_password("pass word 2", self.stored_user()[2]))

    def test_missing_option_without_terminal(self) -> None:
        """Elsewhere, a missing field is an error naming its option."""
        self.assertEqual(self.fails(1, "make-user", *USER),
                         "postal: --password is required (not asking: standard input is not a terminal)")

    def test_short_password(self) -> None:
        """Postal's minimum password length (8) is enforced."""
        self.assertEqual(self.fails(1, "make-user", *USER, "--password", "short"),
                         "postal: password must be at least 8 characters")

    def test_duplicate_email(self) -> None:
        """A second user with the same address is refused."""
        self.ok("make-user", *USER, "--password", "password1")
        self.assertIn("already exists", self.fails(1, "make-user", *USER, "--password", "password2"))


class OrganizationTests(CLITestCase):
    """C{postal org create}."""

    def setUp(self) -> None:
        super().setUp()
        self.initialize()

    def test_create(self) -> None:
        """The permalink comes from the name unless given."""
        self.assertEqual(self.ok("org", "create", "Acme Inc")["permalink"], "acme-inc")
        data = self.ok("org", "create", "Other", "--permalink", "oth")
        self.assertEqual(sorted(data), ["permalink", "uuid"])
        self.assertEqual(data["permalink"], "oth")

    def test_owner(self) -> None:
        """--owner names an existing user by e-mail address."""
        self.ok("make-user", *USER, "--password", "password1")
        self.ok("org", "create", "Acme", "--owner", "ann@example.com")
        self.assertEqual(self.fails(1, "org", "create", "Beta", "--owner", "nobody@example.com"),
                         "postal: no user with e-mail address nobody@example.com")

    def test_duplicate_permalink(self) -> None:
        """An explicit permalink that is taken is an error."""
        self.ok("org", "create", "Acme")
        self.assertEqual(self.fails(1, "org", "create", "Acme 2", "--permalink", "acme"),
                         "postal: organization permalink 'acme' is already taken")

    def test_reserved_permalink(self) -> None:
        """Postal's reserved permalinks are refused."""
        self.assertIn("reserved", self.fails(1, "org", "create", "Admin"))


class ServerTests(CLITestCase):
    """C{postal server create}."""

    def setUp(self) -> None:
        super().setUp()
        self.initialize()
        self.ok("org", "create", "Acme")

    def test_create(self) -> None:
        """A server gets a permalink and a 6-letter token, printed for the operator."""
        data = self.ok("server", "create", "acme", "Main Mail", "--mode", "Development")
        self.assertEqual(sorted(data), ["permalink", "token", "uuid"])
        self.assertEqual(data["permalink"], "main-mail")
        self.assertRegex(data["token"], r"^[a-z]{6}$")
        out = self.cli("server", "create", "acme", "Other").out
        self.assertRegex(out, r"Created server acme/other \(Live, uuid [0-9a-f-]{36}\)\.\nToken: [a-z]{6}\n")

    def test_unknown_organization(self) -> None:
        """An unknown organization is named."""
        self.assertEqual(self.fails(1, "server", "create", "nope", "Mail"),
                         "postal: no organization with permalink 'nope'")

    def test_duplicate(self) -> None:
        """A second server with the same permalink in the organization is refused."""
        self.ok("server", "create", "acme", "Mail")
        self.assertIn("already has a server", self.fails(1, "server", "create", "acme", "Mail"))

    def test_bad_mode(self) -> None:
        """A mode other than Live or Development is a usage error."""
        self.assertIn("invalid choice: 'Test'", self.fails(2, "server", "create", "acme", "Mail", "--mode", "Test"))

# -*- test-case-name: tests.cli.test_subprocess -*-
"""
The installed C{postal} script in a real process: the happy path of
C{initialize} and the account verbs, exit statuses, and C{domain check}
end to end against a local authoritative DNS server.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from postal.dns import CNAMERecord, MXRecord
from tests.cli.helpers import CLIMixin
from tests.cli.test_domains import as_dns_record
from tests.dnsserver import start_dns_server

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "postal")


def _command() -> tuple[str, list[str]]:
    if os.path.exists(_SCRIPT):
        return _SCRIPT, []
    return sys.executable, ["-m", "postal.cli.main"]


class SubprocessTests(CLIMixin, TestCase):
    """C{postal} as operators run it."""

    async def postal(self, *argv: str) -> tuple[int, str, str]:
        executable, prefix = _command()
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.folder,
                   "POSTAL_CONFIG_FILE_PATH": self.config_path}
        out, err, code = await getProcessOutputAndValue(
            executable, prefix + list(argv), env=environ, path=self.folder)
        return code, out.decode("utf-8"), err.decode("utf-8")

    async def test_initialize_and_create(self) -> None:
        """initialize, org create and server create succeed with JSON output; the config comes from the environment."""
        code, out, err = await self.postal("initialize", "--json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(json.loads(out)["migrated_to"], "0001")
        self.assertTrue(os.path.exists(os.path.join(self.folder, "signing.key")))
        code, out, _ = await self.postal("org", "create", "Acme", "--json")
        self.assertEqual((code, json.loads(out)["permalink"]), (0, "acme"))
        code, out, _ = await self.postal("server", "create", "acme", "Mail", "--json")
        self.assertEqual(code, 0)
        self.assertRegex(json.loads(out)["token"], "^[a-z]{6}$")

    async def test_exit_statuses(self) -> None:
        """An error exits 1 and a usage error 2, each with one line on stderr and nothing on stdout."""
        code, out, err = await self.postal("default-dkim-record", "--config", "/nonexistent.yml")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, "postal: configuration error: /nonexistent.yml: configuration file not found\n")
        code, out, err = await self.postal("server", "create")
        self.assertEqual((code, out, err.count("\n")), (2, "", 1))

    async def test_domain_check_against_dns_server(self) -> None:
        """
        C{postal domain check} asks the nameserver in dns.nameservers: a domain
        whose records are right is verified and OK; broken records give Postal's texts.
        """
        server = start_dns_server(self)
        self.write_config({"dns": {"mx_records": ["mx1.postal.test", "mx2.postal.test"],
                                   "nameservers": [server.nameserver], "timeout": 2}})
        self.make_server()
        added = self.ok("domain", "add", "acme/mail", "example.com")
        for record in added["records"]:
            server.zone.add(record["name"], as_dns_record(record))

        code, out, err = await self.postal("domain", "check", "acme/mail", "example.com", "--json")
        self.assertEqual((code, err), (0, ""))
        data: dict[str, Any] = json.loads(out)
        self.assertEqual((data["verified"], data["dns_ok"]), (True, True))
        self.assertEqual([data[f"{c}_status"] for c in ("spf", "dkim", "mx", "return_path")], ["OK"] * 4)
        self.assertIn(("udp", "TXT", "example.com"), server.queries)

        server.zone.replace("example.com", MXRecord(10, "mx2.postal.test"))
        server.zone.replace("psrp.example.com", CNAMERecord("rp.other.example"))
        code, out, err = await self.postal("domain", "check", "acme/mail", "example.com")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines(), [
            "example.com: verified",
            "  SPF          Missing  No SPF record exists for this domain",
            "  DKIM         OK",
            "  MX           Invalid  MX record for mx1.postal.test are missing and are required.",
            "  Return path  Invalid  There is a CNAME record at psrp.example.com but it points to "
            "rp.other.example which is incorrect. It should point to rp.postal.example.com.",
            "DNS needs attention.",
        ])

    async def test_domain_check_dns_timeout(self) -> None:
        """A nameserver that never answers makes C{domain check} fail with one line, exit status 1."""
        server = start_dns_server(self)
        server.silent.add("example.com")
        self.write_config({"dns": {"nameservers": [server.nameserver], "timeout": 0.2}})
        self.make_server()
        self.ok("domain", "add", "acme/mail", "example.com", "--verified")
        code, out, err = await self.postal("domain", "check", "acme/mail", "example.com")
        self.assertEqual((code, out), (1, ""))
        self.assertRegex(err, r"^postal: [A-Z]+ example.com: DNS query timed out\n$")

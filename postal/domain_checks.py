# -*- test-case-name: tests.test_domain_checks -*-
"""
A domain's DNS: the records Postal asks its owner to publish, the check
of ownership (the verification TXT record), and Postal's four checks
(SPF, DKIM, MX, return path) with Postal's statuses and error texts.

Lookups go through an L{IResolver}.  A name that does not exist counts as
having no records (as in Postal); a lookup that fails temporarily
(SERVFAIL, timeout) fails the whole check with L{DNSTemporaryFailure},
so a flaky resolver never records a false "Missing".
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from twisted.internet.defer import Deferred, DeferredList
from twisted.python.failure import Failure

from postal.config import DNSSettings
from postal.db.domains import DNSCheckResult, Domain
from postal.dns import IResolver, NonexistentDomain
from postal.keys import dkim_record, load_private_key

__all__ = [
    "PublishedRecord", "DomainDNSChecker", "published_records", "spf_record", "dkim_record_name", "dkim_record_value",
    "return_path_name", "verification_record", "to_sentence",
]

OK, MISSING, INVALID = "OK", "Missing", "Invalid"



@attrs.frozen
class PublishedRecord:
    """One DNS record the domain's owner should publish."""

    type: str
    name: str
    value: str
    priority: int | None = None
    purpose: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "name": self.name, "value": self.value}
        if self.priority is not None:
            data["priority"] = self.priority
        if self.purpose:
            data["purpose"] = self.purpose
        return data


def spf_record(settings: DNSSettings) -> str:
    return f"v=spf1 a mx include:{settings.spf_include} ~all"


def dkim_record_name(domain: Domain, settings: DNSSettings) -> str:
    return f"{domain.dkim_selector(settings.dkim_identifier)}._domainkey.{domain.name}"


def dkim_record_value(domain: Domain) -> str:
    return dkim_record(load_private_key(domain.dkim_private_key))


def return_path_name(domain: Domain, settings: DNSSettings) -> str:
    return f"{settings.custom_return_path_prefix}.{domain.name}"


def verification_record(domain: Domain, settings: DNSSettings) -> str:
    return f"{settings.domain_verify_prefix} {domain.verification_token}"


def to_sentence(items: list[str]) -> str:
    """Rails' C{Array#to_sentence}: C{a}, C{a and b}, C{a, b, and c}."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def published_records(domain: Domain, settings: DNSSettings) -> tuple[PublishedRecord, ...]:
    """
    What to publish: the verification TXT (until verified), SPF, DKIM,
    the return-path CNAME and the MX records (for incoming mail).
    """
    records = []
    if not domain.verified:
        records.append(PublishedRecord("TXT", domain.name, verification_record(domain, settings), purpose="verification"))
    records += [
        PublishedRecord("TXT", domain.name, spf_record(settings), purpose="spf"),
        PublishedRecord("TXT", dkim_record_name(domain, settings), dkim_record_value(domain), purpose="dkim"),
        PublishedRecord("CNAME", return_path_name(domain, settings), settings.return_path_domain, purpose="return_path"),
    ]
    records += [
        PublishedRecord("MX", domain.name, host, priority=10, purpose="mx") for host in settings.mx_records
    ]
    return tuple(records)


_SPF = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)


def _spf_includes(text: str, include: str) -> bool:
    """Whether an SPF record has the term C{include:<include>} (optionally C{+}-qualified)."""
    wanted = f"include:{include}".lower()
    return any(term.lower().lstrip("+") == wanted for term in text.split())


def check_spf(texts: list[str], settings: DNSSettings) -> tuple[str, str | None]:
    spf = [t for t in texts if _SPF.match(t)]
    if not spf:
        return MISSING, "No SPF record exists for this domain"
    if not any(_spf_includes(t, settings.spf_include) for t in spf):
        return INVALID, f"An SPF record exists but it doesn't include {settings.spf_include}"
    return OK, None


def check_dkim(texts: list[str], name: str, expected: str) -> tuple[str, str | None]:
    if not texts:
        return MISSING, f"No TXT records were returned for {name}"
    if len(texts) > 1:
        return INVALID, f"There are {len(texts)} records for at {name}. There should only be one."
    found = texts[0] if texts[0].endswith(";") else texts[0] + ";"
    if found != expected:
        return INVALID, (f"The DKIM record at {name} does not match the record we have provided. "
                         "Please check it has been copied correctly.")
    return OK, None


def check_mx(hosts: list[str], domain_name: str, settings: DNSSettings) -> tuple[str, str | None]:
    if not hosts:
        return MISSING, f"There are no MX records for {domain_name}"
    missing = [h for h in settings.mx_records if h.lower().rstrip(".") not in hosts]
    if not missing:
        return OK, None
    if len(missing) == len(settings.mx_records):
        return MISSING, "You have MX records but none of them point to us."
    noun = "record" if len(missing) == 1 else "records"
    return INVALID, f"MX {noun} for {to_sentence(missing)} are missing and are required."


def check_return_path(targets: list[str], name: str, settings: DNSSettings) -> tuple[str, str | None]:
    if not targets:
        return MISSING, f"There is no return path record at {name}"
    expected = settings.return_path_domain.lower().rstrip(".")
    if len(targets) == 1 and targets[0] == expected:
        return OK, None
    return INVALID, (f"There is a CNAME record at {name} but it points to {targets[0]} which is incorrect. "
                     f"It should point to {settings.return_path_domain}.")


def _or_nothing(reason: Failure) -> tuple[()]:
    """A name that does not exist has no records."""
    reason.trap(NonexistentDomain)
    return ()


async def _all(*deferreds: Deferred[Any]) -> list[Any]:
    """Wait for every lookup; re-raise the first failure only after all have finished."""
    results = await DeferredList(list(deferreds), consumeErrors=True)
    for success, value in results:
        if not success:
            value.raiseException()
    return [value for _, value in results]


@attrs.define
class DomainDNSChecker:
    """Checks domains through C{resolver} against the installation's C{dns.*} settings."""

    _resolver: IResolver
    _settings: DNSSettings

    def published_records(self, domain: Domain) -> tuple[PublishedRecord, ...]:
        return published_records(domain, self._settings)

    def _texts(self, name: str) -> Deferred[Any]:
        d = self._resolver.lookup_txt(name)
        d.addCallback(lambda records: [r.text.strip() for r in records])
        return d.addErrback(_or_nothing)

    def verify(self, domain: Domain) -> Deferred[bool]:
        """Whether the apex has the TXT record C{<domain_verify_prefix> <token>}."""
        expected = verification_record(domain, self._settings)
        return self._texts(domain.name).addCallback(lambda texts: expected in texts)

    def check(self, domain: Domain) -> Deferred[DNSCheckResult]:
        """Run Postal's four checks at once; fails with L{DNSTemporaryFailure} if any lookup does."""
        return Deferred.fromCoroutine(self._check(domain))

    async def _check(self, domain: Domain) -> DNSCheckResult:
        settings = self._settings
        dkim_name = dkim_record_name(domain, settings)
        rp_name = return_path_name(domain, settings)
        mx = self._resolver.lookup_mx(domain.name).addCallback(lambda rs: [r.host for r in rs])
        cname = self._resolver.lookup_cname(rp_name).addCallback(lambda rs: [r.target for r in rs])
        apex, dkim, hosts, targets = await _all(
            self._texts(domain.name), self._texts(dkim_name),
            mx.addErrback(_or_nothing), cname.addErrback(_or_nothing),
        )
        spf_status, spf_error = check_spf(apex, settings)
        dkim_status, dkim_error = check_dkim(dkim, dkim_name, dkim_record_value(domain))
        mx_status, mx_error = check_mx(list(hosts), domain.name, settings)
        rp_status, rp_error = check_return_path(list(targets), rp_name, settings)
        return DNSCheckResult(
            spf_status=spf_status, spf_error=spf_error, dkim_status=dkim_status, dkim_error=dkim_error,
            mx_status=mx_status, mx_error=mx_error,
            return_path_status=rp_status, return_path_error=rp_error,
        )

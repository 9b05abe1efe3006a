# -*- test-case-name: tests.web.test_api_properties -*-
"""
Random parameter objects thrown at every API endpoint: whatever arrives,
the answer is HTTP 200 with Postal's envelope and a known status, and never
an internal error.  Derandomized (the C{postal-ci} profile) so CI runs are
repeatable.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.web.apihelpers import APIFixture, make_api_fixture

settings.register_profile(
    "postal-ci", derandomize=True, deadline=None, max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)
_addresses = st.sampled_from(["a@x.test", "B <b@y.test>", "", "not-an-address", "me@acme.test", "x,y@z, <>"])
_base64 = st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=12)
_attachment = st.fixed_dictionaries({}, optional={"name": _json | st.text(max_size=10), "content_type": _json,
                                                  "data": _base64 | _json})
_raw = st.sampled_from([b"From: me@acme.test\r\n\r\nhi", b"From: x@other.test\r\n\r\n", b"\xff\xfe\r\n\r\n",
                        b"Subject: =?utf-8?q?=E2=82?=\r\nFrom: =?bad?=\r\n\r\n"]).map(
    lambda b: base64.b64encode(b).decode())
_fields: dict[str, st.SearchStrategy[Any]] = {
    "to": st.lists(_addresses, max_size=3) | _addresses | _json,
    "cc": st.lists(_addresses, max_size=3) | _json,
    "bcc": _json,
    "from": _addresses | _json,
    "sender": _addresses | _json,
    "subject": st.text(max_size=30) | _json,
    "reply_to": _addresses | _json,
    "plain_body": st.text(max_size=40) | _json,
    "html_body": st.text(max_size=40) | _json,
    "tag": _json,
    "bounce": _json,
    "headers": st.dictionaries(st.text(max_size=10), _json, max_size=3) | _json,
    "attachments": st.lists(_attachment | _json, max_size=3) | _json,
    "rcpt_to": st.lists(_addresses, max_size=3) | _json,
    "mail_from": _addresses | _json,
    "data": _raw | _base64 | _json,
    "id": st.integers(-5, 50) | st.text(max_size=6) | _json,
    "_expansions": st.just(True) | st.lists(st.sampled_from(["status", "headers", "raw_message", "attachments",
                                                            "plain_body", "html_body", "x"]), max_size=4) | _json,
}
_params = st.fixed_dictionaries({}, optional=_fields) | _json
_paths = st.sampled_from(["/api/v1/send/message", "/api/v1/send/raw", "/api/v1/messages/message",
                          "/api/v1/messages/deliveries"])


class RandomParametersTests(SynchronousTestCase):
    def setUp(self) -> None:
        settings.load_profile("postal-ci")
        self.fx: APIFixture = make_api_fixture(self)

    @given(path=_paths, params=_params, method=st.sampled_from(["GET", "POST", "PUT", "PATCH"]),
           as_form=st.booleans())
    def test_always_an_envelope(self, path: str, params: Any, method: str, as_form: bool) -> None:
        """Any parameters at any endpoint give HTTP 200, the envelope, and no internal error."""
        if as_form:
            from urllib.parse import urlencode
            body = urlencode({"params": json.dumps(params)}).encode()
            answer = self.fx.post(path, body, method=method, content_type="application/x-www-form-urlencoded")
        else:
            answer = self.fx.post(path, json.dumps(params).encode(), method=method)
        self.assertEqual(list(answer), ["status", "time", "flags", "data"])
        self.assertIn(answer["status"], ("success", "error", "parameter-error"))
        self.assertEqual(answer["flags"], {})
        if answer["status"] == "error":
            self.assertNotEqual(answer["data"]["code"], "InternalError", answer)

    @given(body=st.binary(max_size=200))
    def test_random_bodies(self, body: bytes) -> None:
        """Random bytes as a JSON body are answered with an envelope."""
        answer = self.fx.post("/api/v1/send/message", body)
        self.assertIn(answer["status"], ("success", "error", "parameter-error"))
        if answer["status"] == "error":
            self.assertNotEqual(answer["data"]["code"], "InternalError", answer)

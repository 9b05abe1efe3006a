# -*- test-case-name: tests.web.test_api_v1 -*-
"""
Postal's API v1, request by request through L{StubTreq}: every success
shape and every error as golden JSON, over a real (SQLite) database.
"""

from __future__ import annotations

import base64
import email
import json
from email import policy
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select, update
from twisted.trial.unittest import SynchronousTestCase

from postal.db import schema as s
from postal.keys import jwk, load_private_key
from tests.web.apihelpers import SIGNING_PEM, make_api_fixture

SEND = "/api/v1/send/message"
RAW = "/api/v1/send/raw"
MESSAGE = "/api/v1/messages/message"
DELIVERIES = "/api/v1/messages/deliveries"


def _error(code: str, **data: Any) -> dict[str, Any]:
    return {"status": "error", "time": 0.0, "flags": {}, "data": {**data, "code": code}}


def _parameter_error(message: str) -> dict[str, Any]:
    return {"status": "parameter-error", "time": 0.0, "flags": {}, "data": {"message": message}}


VALID = {"to": ["john@example.com"], "from": "Acme <noreply@acme.test>", "subject": "Welcome",
         "plain_body": "Hi John", "html_body": "<p>Hi John</p>"}


class AuthenticationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fx = make_api_fixture(self)

    def test_missing_key(self) -> None:
        """Without X-Server-API-Key every endpoint answers AccessDenied."""
        for path in (SEND, RAW, MESSAGE, DELIVERIES):
            self.assertEqual(self.fx.post(path, VALID, key=None),
                             _error("AccessDenied", message="Must be authenticated as a server."))

    def test_blank_key(self) -> None:
        """A blank key is the same as none."""
        self.assertEqual(self.fx.post(SEND, VALID, key="  "),
                         _error("AccessDenied", message="Must be authenticated as a server."))

    def test_unknown_key(self) -> None:
        """An unknown key is named back with InvalidServerAPIKey."""
        self.assertEqual(self.fx.post(SEND, VALID, key="nope"), _error(
            "InvalidServerAPIKey", message="The API token provided in X-Server-API-Key was not valid.",
            token="nope"))

    def test_suspended_server(self) -> None:
        """A suspended server's key answers ServerSuspended with no message."""
        with self.fx.pool.engine.begin() as conn:
            conn.execute(update(s.servers).values(suspended_at=5.0))
        self.assertEqual(self.fx.post(SEND, VALID), _error("ServerSuspended"))

    def test_header_name_case(self) -> None:
        """The key header's name is case-insensitive."""
        answer = self.fx.request("POST", SEND, json.dumps(VALID).encode(), {
            "content-type": ["application/json"], "x-server-api-key": [self.fx.key]})
        self.assertEqual(answer["status"], "success")

    def test_last_use_touched(self) -> None:
        """Using a key records when it was last used."""
        self.fx.post(SEND, VALID)
        with self.fx.pool.engine.connect() as conn:
            used = conn.execute(select(s.credentials.c.last_used_at)).scalar()
        self.assertEqual(used, self.fx.clock.seconds())


class SendMessageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fx = make_api_fixture(self)

    def _rows(self, table: Any) -> list[Any]:
        with self.fx.pool.engine.connect() as conn:
            return list(conn.execute(select(table).order_by(table.c.id)).all())

    def test_success_shape(self) -> None:
        """Success names each bare address with the id and token of its stored message."""
        answer = self.fx.post(SEND, {**VALID, "to": ["John <john@example.com>"], "cc": ["cc@example.com"],
                                     "bcc": ["bcc@example.com"], "tag": "welcome"})
        rows = self._rows(s.messages)
        self.assertEqual(answer, {"status": "success", "time": 0.0, "flags": {}, "data": {
            "message_id": rows[0].message_id,
            "messages": {r.rcpt_to: {"id": r.id, "token": r.token} for r in rows},
        }})
        self.assertEqual([r.rcpt_to for r in rows], ["john@example.com", "cc@example.com", "bcc@example.com"])
        local, _, domain = rows[0].message_id.partition("@")
        self.assertEqual((len(local), domain), (36, "rp.postal.example.com"))
        self.assertEqual({(r.scope, r.mail_from, r.tag, r.received_with_ssl, r.status) for r in rows},
                         {("outgoing", "noreply@acme.test", "welcome", True, "Pending")})

    def test_one_raw_message_and_queue_rows(self) -> None:
        """Every recipient's message shares one stored raw message and has a queue row."""
        self.fx.post(SEND, {**VALID, "to": ["a@x.test", "b@y.test"]})
        self.assertEqual(len(self._rows(s.raw_messages)), 1)
        self.assertEqual(len({r.raw_message_id for r in self._rows(s.messages)}), 1)
        self.assertEqual(len(self._rows(s.queued_messages)), 2)

    def test_raw_message_built(self) -> None:
        """The message is multipart/alternative with Received, Message-ID and no Bcc header."""
        answer = self.fx.post(SEND, {**VALID, "bcc": ["hidden@example.com"], "headers": {"X-Campaign": "42"}})
        raw = bytes(self._rows(s.raw_messages)[0].data)
        parsed = email.message_from_bytes(raw, policy=policy.default)
        self.assertEqual(parsed["Message-ID"], f"<{answer['data']['message_id']}>")
        self.assertTrue(parsed["Received"].startswith(
            "from api (127.0.0.1 [127.0.0.1]) by postal.example.com with HTTP; "))
        self.assertIsNone(parsed["Bcc"])
        self.assertEqual(parsed["X-Campaign"], "42")
        self.assertEqual(parsed.get_content_type(), "multipart/alternative")
        self.assertEqual(parsed.get_body(("plain",)).get_content().strip(), "Hi John")  # type: ignore[union-attr]
        self.assertEqual(parsed.get_body(("html",)).get_content().strip(), "<p>Hi John</p>")  # type: ignore[union-attr]
        self.assertIn(b"\r\n", raw)
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))

    def test_attachments(self) -> None:
        """Attachments go in a multipart/mixed with the bodies; content type defaults to octet-stream."""
        self.fx.post(SEND, {**VALID, "attachments": [
            {"name": "a.txt", "content_type": "text/plain", "data": base64.b64encode(b"hello").decode()},
            {"name": "b.bin", "data": base64.b64encode(b"\x00\x01").decode()},
            "not a hash",
        ]})
        parsed = email.message_from_bytes(bytes(self._rows(s.raw_messages)[0].data), policy=policy.default)
        self.assertEqual(parsed.get_content_type(), "multipart/mixed")
        found = [(a.get_filename(), a.get_content_type(), a.get_content()) for a in parsed.iter_attachments()]
        self.assertEqual(found, [("a.txt", "text/plain", "hello"), ("b.bin", "application/octet-stream", b"\x00\x01")])

    def test_comma_separated_and_duplicates(self) -> None:
        """A string is split on commas; a repeated address makes two messages, the answer keeps the last."""
        answer = self.fx.post(SEND, {**VALID, "to": "a@x.test, b@x.test,a@x.test"})
        rows = self._rows(s.messages)
        self.assertEqual([r.rcpt_to for r in rows], ["a@x.test", "b@x.test", "a@x.test"])
        self.assertEqual(answer["data"]["messages"], {
            "a@x.test": {"id": rows[2].id, "token": rows[2].token},
            "b@x.test": {"id": rows[1].id, "token": rows[1].token}})

    def test_errors(self) -> None:
        """Each validation failure has Postal's code and text."""
        too_many = [f"r{i}@x.test" for i in range(51)]
        cases = [
            ({**VALID, "to": []}, "NoRecipients", "There are no recipients defined to receive this message"),
            ({**VALID, "to": too_many}, "TooManyToAddresses",
             "The maximum number of To addresses has been reached (maximum 50)"),
            ({**VALID, "cc": too_many}, "TooManyCCAddresses",
             "The maximum number of CC addresses has been reached (maximum 50)"),
            ({**VALID, "bcc": too_many}, "TooManyBCCAddresses",
             "The maximum number of BCC addresses has been reached (maximum 50)"),
            ({**VALID, "plain_body": "", "html_body": None}, "NoContent",
             "There is no content defined for this e-mail"),
            ({**VALID, "from": ""}, "FromAddressMissing", "The From address is missing and is required"),
            ({**VALID, "from": "x@other.test"}, "UnauthenticatedFromAddress",
             "The From address is not authorised to send mail from this server"),
            ({**VALID, "attachments": [{"data": "aGk="}]}, "AttachmentMissingName", "An attachment is missing a name"),
            ({**VALID, "attachments": [{"name": "a"}]}, "AttachmentMissingData", "An attachment is missing data"),
        ]
        for params, code, message in cases:
            self.assertEqual(self.fx.post(SEND, params), _error(code, message=message), code)
        self.assertEqual(self._rows(s.messages), [])

    def test_exactly_fifty(self) -> None:
        """Fifty addresses in each field is allowed."""
        fifty = [f"r{i}@x.test" for i in range(50)]
        self.assertEqual(self.fx.post(SEND, {**VALID, "to": fifty})["status"], "success")

    def test_first_error_wins(self) -> None:
        """With several problems only the first, in Postal's order, is reported."""
        answer = self.fx.post(SEND, {"to": [], "from": "", "plain_body": ""})
        self.assertEqual(answer["data"]["code"], "NoRecipients")
        answer = self.fx.post(SEND, {"to": ["a@x.test"], "from": "bad@other.test"})
        self.assertEqual(answer["data"]["code"], "NoContent")

    def test_sender_when_allowed(self) -> None:
        """With allow-sender, an authorised Sender lets any From through."""
        fx = make_api_fixture(self, allow_sender=True)
        answer = fx.post(SEND, {**VALID, "from": "x@other.test", "sender": "me@acme.test"})
        self.assertEqual(answer["status"], "success")
        answer = self.fx.post(SEND, {**VALID, "from": "x@other.test", "sender": "me@acme.test"})
        self.assertEqual(answer["data"]["code"], "UnauthenticatedFromAddress")

    def test_invalid_base64_attachment(self) -> None:
        """Attachment data that is not base64 is an InvalidBase64 error, not a crash."""
        answer = self.fx.post(SEND, {**VALID, "attachments": [{"name": "a.txt", "data": "%%%"}]})
        self.assertEqual(answer, _error("InvalidBase64", message="The data of attachment 'a.txt' is not valid base64"))

    def test_wrong_types(self) -> None:
        """Values of the wrong type are parameter errors naming the parameter."""
        self.assertEqual(self.fx.post(SEND, {**VALID, "to": {"a": 1}}), _parameter_error(
            "`to` parameter must be an array of addresses or a comma-separated string"))
        self.assertEqual(self.fx.post(SEND, {**VALID, "subject": ["x"]}),
                         _parameter_error("`subject` parameter must be a string"))
        self.assertEqual(self.fx.post(SEND, {**VALID, "attachments": "x"}),
                         _parameter_error("`attachments` parameter must be an array"))

    def test_malformed_json(self) -> None:
        """A body that is not a JSON object is an InvalidJSON error."""
        for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
            self.assertEqual(self.fx.post(SEND, body), _error(
                "InvalidJSON", message="The request body is not a valid JSON object"))

    def test_body_too_large(self) -> None:
        """A body over the configured maximum is refused inside the envelope."""
        fx = make_api_fixture(self, max_request_size=1000)
        answer = fx.post(SEND, {**VALID, "plain_body": "x" * 2000})
        self.assertEqual(answer, _error(
            "RequestTooLarge", message="The request body is larger than the maximum of 1000 bytes"))


class ParamsTransportTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fx = make_api_fixture(self)

    def test_methods(self) -> None:
        """GET, PUT and PATCH work like POST."""
        for method in ("GET", "PUT", "PATCH"):
            self.assertEqual(self.fx.post(SEND, VALID, method=method)["status"], "success", method)

    def test_json_with_charset(self) -> None:
        """A JSON content type with a charset parameter is still JSON."""
        answer = self.fx.post(SEND, VALID, content_type="application/json; charset=utf-8")
        self.assertEqual(answer["status"], "success")

    def test_form_params(self) -> None:
        """A form field C{params} holding JSON is read, for POST and for PUT."""
        body = urlencode({"params": json.dumps(VALID)}).encode()
        for method in ("POST", "PUT"):
            answer = self.fx.post(SEND, body, method=method, content_type="application/x-www-form-urlencoded")
            self.assertEqual(answer["status"], "success", method)

    def test_query_params(self) -> None:
        """C{params} in the query string works for GET."""
        answer = self.fx.request("GET", SEND + "?" + urlencode({"params": json.dumps(VALID)}), b"",
                                 {"X-Server-API-Key": [self.fx.key]})
        self.assertEqual(answer["status"], "success")

    def test_form_params_bad_json(self) -> None:
        """A C{params} field that is not JSON is an InvalidJSON error."""
        body = urlencode({"params": "{nope"}).encode()
        answer = self.fx.post(SEND, body, content_type="application/x-www-form-urlencoded")
        self.assertEqual(answer, _error("InvalidJSON", message="The `params` parameter is not a valid JSON object"))

    def test_other_content_ignored(self) -> None:
        """Without JSON or C{params} there are no parameters (so no recipients)."""
        answer = self.fx.post(SEND, b"to=a@x.test", content_type="application/x-www-form-urlencoded")
        self.assertEqual(answer["data"]["code"], "NoRecipients")

    def test_jwks(self) -> None:
        """The JWKS document publishes the signing key with Postal's kid."""
        response = self.fx.client.get("http://api.test/.well-known/jwks.json")
        results: list[Any] = []
        response.addCallback(lambda r: r.json()).addCallback(results.append)
        self.assertEqual(results, [{"keys": [jwk(load_private_key(SIGNING_PEM))]}])


class SendRawTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fx = make_api_fixture(self)
        self.raw = (b"From: Acme <me@acme.test>\r\nTo: a@x.test\r\nSubject: Raw one\r\n"
                    b"Message-ID: <abc@acme.test>\r\n\r\nHello\r\n")

    def _params(self, **changes: Any) -> dict[str, Any]:
        return {"rcpt_to": ["a@x.test", "b@x.test", "a@x.test"], "mail_from": "me@acme.test",
                "data": base64.b64encode(self.raw).decode(), **changes}

    def test_success(self) -> None:
        """One message per unique recipient, the raw bytes stored as sent."""
        answer = self.fx.post(RAW, self._params())
        with self.fx.pool.engine.connect() as conn:
            rows = conn.execute(select(s.messages).order_by(s.messages.c.id)).all()
            raw = conn.execute(select(s.raw_messages.c.data)).scalar_one()
        self.assertEqual(answer, {"status": "success", "time": 0.0, "flags": {}, "data": {
            "message_id": "abc@acme.test",
            "messages": {r.rcpt_to: {"id": r.id, "token": r.token} for r in rows}}})
        self.assertEqual(len(rows), 2)
        self.assertEqual(bytes(raw), self.raw)
        self.assertEqual({(r.subject, r.mail_from) for r in rows}, {("Raw one", "me@acme.test")})

    def test_empty_recipients(self) -> None:
        """An empty rcpt_to succeeds with nothing made."""
        self.assertEqual(self.fx.post(RAW, self._params(rcpt_to=[])), {
            "status": "success", "time": 0.0, "flags": {}, "data": {"message_id": None, "messages": {}}})

    def test_unauthenticated(self) -> None:
        """A From header of another domain is refused with a code and no message."""
        self.raw = self.raw.replace(b"me@acme.test", b"me@other.test")
        self.assertEqual(self.fx.post(RAW, self._params()), _error("UnauthenticatedFromAddress"))

    def test_parameter_errors(self) -> None:
        """Missing rcpt_to (or not an array), mail_from or data are parameter errors, in that order."""
        self.assertEqual(self.fx.post(RAW, self._params(rcpt_to="a@x.test")),
                         _parameter_error("`rcpt_to` parameter is required but is missing"))
        self.assertEqual(self.fx.post(RAW, self._params(mail_from=" ")),
                         _parameter_error("`mail_from` parameter is required but is missing"))
        self.assertEqual(self.fx.post(RAW, self._params(data="")),
                         _parameter_error("`data` parameter is required but is missing"))

    def test_invalid_base64(self) -> None:
        """Data that is not base64 is an InvalidBase64 error."""
        self.assertEqual(self.fx.post(RAW, self._params(data="!!notbase64")),
                         _error("InvalidBase64", message="The `data` parameter is not valid base64"))


class MessageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fx = make_api_fixture(self)
        answer = self.fx.post(SEND, {**VALID, "tag": "welcome", "headers": {"X-Campaign": "42"},
                                     "attachments": [{"name": "a.txt", "content_type": "text/plain",
                                                      "data": "aGVsbG8="}]})
        self.message = answer["data"]["messages"]["john@example.com"]

    def test_not_found(self) -> None:
        """An unknown id answers MessageNotFound with the id as sent."""
        for path in (MESSAGE, DELIVERIES):
            self.assertEqual(self.fx.post(path, {"id": "999"}), _error(
                "MessageNotFound", message="No message found matching provided ID", id="999"))

    def test_missing_id(self) -> None:
        """A blank id is a parameter error; a hash is the wrong type."""
        self.assertEqual(self.fx.post(MESSAGE, {}), _parameter_error("`id` parameter is required but is missing"))
        self.assertEqual(self.fx.post(DELIVERIES, {"id": {"a": 1}}),
                         _parameter_error("`id` parameter must be a string or integer"))

    def test_base(self) -> None:
        """Without expansions the data is just the id and token (a string id works)."""
        answer = self.fx.post(MESSAGE, {"id": str(self.message["id"])})
        self.assertEqual(answer, {"status": "success", "time": 0.0, "flags": {}, "data": self.message})

    def test_all_expansions(self) -> None:
        """C{_expansions: true} returns every expansion with Postal's types."""
        data = self.fx.post(MESSAGE, {"id": self.message["id"], "_expansions": True})["data"]
        self.assertEqual(list(data), ["id", "token", "status", "details", "inspection", "plain_body", "html_body",
                                      "attachments", "headers", "raw_message", "activity_entries"])
        self.assertEqual(data["status"], {"status": "Pending", "last_delivery_attempt": None, "held": False,
                                          "hold_expiry": None})
        details = data["details"]
        self.assertEqual({k: v for k, v in details.items() if k not in ("message_id", "size")}, {
            "rcpt_to": "john@example.com", "mail_from": "noreply@acme.test", "subject": "Welcome",
            "timestamp": self.fx.clock.seconds(), "direction": "outgoing", "bounce": False,
            "bounce_for_id": 0, "tag": "welcome", "received_with_ssl": True})
        self.assertIsInstance(details["size"], str)
        self.assertEqual(data["inspection"], {"inspected": False, "spam": False, "spam_score": 0.0,
                                              "threat": False, "threat_details": None})
        self.assertEqual(data["plain_body"].strip(), "Hi John")
        self.assertEqual(data["html_body"].strip(), "<p>Hi John</p>")
        self.assertEqual(data["attachments"], [{
            "filename": "a.txt", "content_type": "text/plain", "data": "aGVsbG8=\n", "size": 5,
            "hash": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"}])
        self.assertEqual(data["headers"]["x-campaign"], ["42"])
        self.assertEqual(data["headers"]["from"], ["Acme <noreply@acme.test>"])
        raw = base64.b64decode(data["raw_message"])
        self.assertEqual(len(raw), int(details["size"]))
        self.assertTrue(all(len(line) <= 60 for line in data["raw_message"].split("\n")))
        self.assertEqual(data["activity_entries"], {"loads": [], "clicks": []})

    def test_some_expansions(self) -> None:
        """An array of names returns only those expansions."""
        data = self.fx.post(MESSAGE, {"id": self.message["id"], "_expansions": ["status", "bogus"]})["data"]
        self.assertEqual(list(data), ["id", "token", "status"])

    def test_activity_entries(self) -> None:
        """Opens and clicks are listed with ISO-8601 millisecond timestamps."""
        with self.fx.pool.engine.begin() as conn:
            conn.execute(s.loads.insert().values(message_id=self.message["id"], ip_address="1.2.3.4",
                                                 user_agent="UA", timestamp=1714399200.5))
            link = conn.execute(s.links.insert().values(message_id=self.message["id"], token="t", hash="h",
                                                        url="https://example.com", timestamp=1.0)).inserted_primary_key[0]
            conn.execute(s.clicks.insert().values(message_id=self.message["id"], link_id=link, ip_address="5.6.7.8",
                                                  user_agent="UA2", timestamp=1714399201.25))
        data = self.fx.post(MESSAGE, {"id": self.message["id"], "_expansions": ["activity_entries"]})["data"]
        self.assertEqual(data["activity_entries"], {
            "loads": [{"ip_address": "1.2.3.4", "user_agent": "UA", "timestamp": "2024-04-29T14:00:00.500Z"}],
            "clicks": [{"url": "https://example.com", "ip_address": "5.6.7.8", "user_agent": "UA2",
                        "timestamp": "2024-04-29T14:00:01.250Z"}]})

    def test_deliveries(self) -> None:
        """Deliveries are listed oldest first with Postal's types; output is stripped."""
        self.assertEqual(self.fx.post(DELIVERIES, {"id": self.message["id"]})["data"], [])
        with self.fx.pool.engine.begin() as conn:
            for stamp, status, output, elapsed in ((20.0, "Sent", " 250 OK \n", 0.52), (10.0, "SoftFail", None, None)):
                conn.execute(s.deliveries.insert().values(
                    message_id=self.message["id"], status=status, details="d", output=output,
                    sent_with_ssl=True, log_id="ABCD1234", timestamp=stamp, time=elapsed))
            ids = [r[0] for r in conn.execute(select(s.deliveries.c.id).order_by(s.deliveries.c.id))]
        self.assertEqual(self.fx.post(DELIVERIES, {"id": self.message["id"]}), {
            "status": "success", "time": 0.0, "flags": {}, "data": [
                {"id": ids[1], "status": "SoftFail", "details": "d", "output": None, "sent_with_ssl": True,
                 "log_id": "ABCD1234", "time": None, "timestamp": 10.0},
                {"id": ids[0], "status": "Sent", "details": "d", "output": "250 OK", "sent_with_ssl": True,
                 "log_id": "ABCD1234", "time": 0.52, "timestamp": 20.0}]})

    def test_other_servers_messages(self) -> None:
        """A message of another server is not found."""
        with self.fx.pool.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(s.messages)).scalar_one()
        self.assertEqual(count, 1)
        self.assertEqual(self.fx.post(MESSAGE, {"id": self.message["id"] + 1})["data"]["code"], "MessageNotFound")

# -*- test-case-name: tests.web.test_api_v1 -*-
"""
Reading API parameters the way Postal's legacy API does: a JSON body when
the Content-Type starts with C{application/json} (merged over the query
string), otherwise a form or query field C{params} holding JSON, otherwise
nothing.  Then turning the loose JSON into typed requests, with a
parameter error naming any value of the wrong type.
"""

from __future__ import annotations

import json
import re
from email.parser import BytesParser
from email.policy import compat32
from typing import Any, Mapping
from urllib.parse import parse_qs

from postal.outgoing.addresses import split_address_list
from postal.outgoing.errors import InvalidParameter, ParameterMissing
from postal.outgoing.values import AttachmentSpec, SendMessageRequest, SendRawRequest
from postal.web.envelope import InvalidJSON

__all__ = [
    "parse_params", "send_message_request", "send_raw_request", "message_id_param",
    "expansions_param", "EXPANSIONS", "is_blank",
]

EXPANSIONS = (
    "status", "details", "inspection", "plain_body", "html_body", "attachments", "headers",
    "raw_message", "activity_entries",
)
_RUBY_TO_I = re.compile(r"^\s*([+-]?\d+)")


def _json_object(text: bytes | str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, UnicodeError, RecursionError):
        raise InvalidJSON(where) from None
    if not isinstance(value, dict):
        raise InvalidJSON(where)
    return value


def _last_values(args: Mapping[bytes, list[bytes]]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): v[-1].decode("utf-8", "replace") for k, v in args.items() if v}


def _multipart_fields(content_type: str, body: bytes) -> dict[bytes, list[bytes]]:
    """The fields of a multipart/form-data body (rare for this API, so the email package parses it)."""
    message = BytesParser(policy=compat32).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body)
    fields: dict[bytes, list[bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.get_payload():
        if isinstance(part, str):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.setdefault(name.encode("utf-8", "replace"), []).append(payload)
    return fields


def parse_params(
    content_type: str | None, body: bytes, query: bytes, form: Mapping[bytes, list[bytes]],
) -> dict[str, Any]:
    """
    The request's parameters.  C{form} holds the fields Twisted parsed (query
    string, and a POSTed form body); other methods' form bodies are parsed here.

    @raise InvalidJSON: the JSON body or the C{params} field is not a JSON object.
    """
    ctype = (content_type or "").strip().lower()
    if ctype.startswith("application/json"):
        params: dict[str, Any] = _last_values(parse_qs(query, keep_blank_values=True))
        if body.strip():
            params.update(_json_object(body, "request body"))
        return params
    fields = dict(form)
    if b"params" not in fields:
        if ctype.startswith("application/x-www-form-urlencoded"):
            fields.update(parse_qs(body, keep_blank_values=True))
        elif ctype.startswith("multipart/form-data"):
            fields.update(_multipart_fields(content_type or "", body))
    raw = fields.get(b"params")
    if raw and raw[-1].strip():
        return _json_object(raw[-1], "`params` parameter")
    return {}


def is_blank(value: Any) -> bool:
    """Ruby's C{blank?}: nil, false, empty or whitespace-only strings, empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value
    return False


def _truthy(value: Any) -> bool:
    """Ruby truthiness: everything but nil and false."""
    return value is not None and value is not False


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _optional_text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise InvalidParameter(name, "must be a string")
    return _scalar_text(value)


def _address_list(params: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = params.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(split_address_list(value))
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return tuple(_scalar_text(v) for v in value)
    raise InvalidParameter(name, "must be an array of addresses or a comma-separated string")


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()  # Postal ignores custom headers that are not a hash
    pairs = []
    for key, item in value.items():
        if item is None or isinstance(item, (str, int, float, bool)):
            pairs.append((str(key), "" if item is None else _scalar_text(item)))
        else:
            pairs.append((str(key), json.dumps(item, separators=(",", ":"), ensure_ascii=False)))
    return tuple(pairs)


def _attachment(entry: Mapping[str, Any]) -> AttachmentSpec:
    fields = {}
    for field in ("name", "content_type", "data"):
        value = entry.get(field)
        if isinstance(value, (dict, list)):
            raise InvalidParameter("attachments", f"entry {field} must be a string")
        fields[field] = None if value is None else _scalar_text(value)
    return AttachmentSpec(**fields)


def _attachments(value: Any) -> tuple[AttachmentSpec, ...]:
    if value is None or isinstance(value, dict):
        return ()  # a hash iterates as pairs in Ruby, none of which is an attachment
    if not isinstance(value, list):
        raise InvalidParameter("attachments", "must be an array")
    return tuple(_attachment(entry) for entry in value if isinstance(entry, dict))


def send_message_request(params: Mapping[str, Any]) -> SendMessageRequest:
    """C{send/message} parameters, typed."""
    return SendMessageRequest(
        to=_address_list(params, "to"),
        cc=_address_list(params, "cc"),
        bcc=_address_list(params, "bcc"),
        from_=_optional_text(params, "from"),
        sender=_optional_text(params, "sender"),
        subject=_optional_text(params, "subject"),
        reply_to=_optional_text(params, "reply_to"),
        plain_body=_optional_text(params, "plain_body"),
        html_body=_optional_text(params, "html_body"),
        tag=_optional_text(params, "tag"),
        bounce=_truthy(params.get("bounce")),
        headers=_headers(params.get("headers")),
        attachments=_attachments(params.get("attachments")),
    )


def send_raw_request(params: Mapping[str, Any]) -> SendRawRequest:
    """C{send/raw} parameters, checked in Postal's order."""
    rcpt_to = params.get("rcpt_to")
    if not isinstance(rcpt_to, list):
        raise ParameterMissing("rcpt_to")
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in rcpt_to):
        raise InvalidParameter("rcpt_to", "must be an array of addresses")
    if is_blank(params.get("mail_from")):
        raise ParameterMissing("mail_from")
    mail_from = _optional_text(params, "mail_from")
    if is_blank(params.get("data")):
        raise ParameterMissing("data")
    data = params.get("data")
    if not isinstance(data, str):
        raise InvalidParameter("data", "must be a base64 string")
    return SendRawRequest(
        rcpt_to=tuple(_scalar_text(v) for v in rcpt_to), mail_from=mail_from or "", data=data,
        bounce=_truthy(params.get("bounce")),
    )


def message_id_param(params: Mapping[str, Any]) -> int:
    """
    The C{id} parameter as Ruby's C{to_i} reads it (C{"12abc"} is 12,
    C{"abc"} is 0, which no message has).
    """
    value = params.get("id")
    if is_blank(value):
        raise ParameterMissing("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidParameter("id", "must be a string or integer")
    if isinstance(value, int):
        return value
    match = _RUBY_TO_I.match(value)
    return int(match.group(1)) if match else 0


def expansions_param(params: Mapping[str, Any]) -> frozenset[str]:
    """C{_expansions}: C{true} is all of them, an array names some, anything else none."""
    value = params.get("_expansions")
    if value is True:
        return frozenset(EXPANSIONS)
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str) and v in EXPANSIONS)
    return frozenset()

"""Decode a Twilio webhook body into its parameters (protocols.md D1, D3).

Twilio posts ``application/x-www-form-urlencoded`` forms; a few products post
JSON instead (their URL then carries ``bodySHA256``). Both become the same
``Params``: the ordered (name, value) pairs, because the signature needs every
value of a repeated name, and ``first`` for reading.

The worker re-parses the stored raw body with no headers at all, so when there
is no Content-Type the format is sniffed from the body: a form never starts
with ``{`` (Twilio's parameter names are letters and digits).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.provider_http import header  # noqa: F401  (also used by this folder's other modules)
from urllib.parse import parse_qsl

from gateway.providers import BadRequest

# Twilio sends about 20-60 parameters; the cap only stops a hostile form from costing memory.
MAX_FIELDS = 1000


@dataclass(frozen=True)
class Params:
    pairs: tuple[tuple[str, str], ...] = ()
    is_json: bool = False
    json_object: bool = True        # False: valid JSON, but not the flat object Twilio sends
    first: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The parameter's value, stripped; None when absent or blank."""
        value = self.first.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None




def is_json(raw: bytes, headers: Mapping[str, Any] | None) -> bool:
    content_type = header(headers, "Content-Type")
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        return media_type == "application/json" or media_type.endswith("+json")
    return bytes(raw).lstrip()[:1] in (b"{", b"[")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _first(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    first: dict[str, str] = {}
    for name, value in pairs:
        first.setdefault(name, value)
    return first


def decode(raw: bytes, headers: Mapping[str, Any] | None = None) -> Params:
    """The request's parameters; BadRequest when the body is neither a UTF-8 form nor valid JSON."""
    if not isinstance(raw, (bytes, bytearray)):
        raise BadRequest("the body is not bytes")
    if is_json(raw, headers):
        try:
            body = json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"the JSON body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            return Params(is_json=True, json_object=False)
        pairs = tuple((str(k), _scalar(v)) for k, v in body.items() if v is not None)
        return Params(pairs=pairs, is_json=True, first=_first(pairs))
    try:
        text = bytes(raw).decode("utf-8")
        # errors="strict": a percent-escaped byte sequence that is not UTF-8 is as bad as a raw one.
        pairs = tuple(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                                max_num_fields=MAX_FIELDS))
    except UnicodeDecodeError:
        raise BadRequest("the form body is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"the form body cannot be decoded: {exc}") from None
    return Params(pairs=pairs, first=_first(pairs))


def message_sid(params: Params) -> str | None:
    """MessageSid, or the legacy duplicates older integrations still send alone."""
    return params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")


def split_address(address: str | None) -> tuple[str | None, str | None]:
    """'whatsapp:+14155238886' -> ('whatsapp', '+14155238886'); '+1415…' -> (None, '+1415…')."""
    if not address:
        return None, None
    address = address.strip()
    prefix, sep, rest = address.partition(":")
    if sep and prefix and prefix.replace("-", "").isalpha():
        return prefix.lower(), rest.strip() or None
    return None, address or None

"""Send one message through the Cloud API and classify the answer (protocols.md B1-B3).

``POST {api_base_url}/{graph_version}/{phone-number-id}/messages`` with the channel's access token
as a Bearer header and a JSON body built from the provider-neutral ``OutboundMessage``
(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages).

Outcomes: a 2xx with ``messages[0].id`` is *sent* (accepted by Meta, not yet delivered); a connect
failure is *retry* (nothing left this process); a read timeout or a connection dropped after the
request was written is *unknown*: Meta may have accepted it, and our id rides along as
``biz_opaque_callback_data`` so a status webhook can settle it. Error answers go through
``errors.classify``. Nothing here raises for a provider answer or a network failure.
"""
from __future__ import annotations

import logging
import math
import ssl
from typing import Any, Callable, Mapping
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.ssl_match_hostname import CertificateError

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult
from webhooks.whatsapp import errors
from webhooks.whatsapp.values import phone_digits, text

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://graph.facebook.com"
DEFAULT_VERSION = "v24.0"
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 15.0
READ_RETRY_DELAY = 5.0               # a mark-as-read whose outcome is unknown is simply sent again
MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})
CAPTION_KINDS = frozenset({"image", "video", "document"})   # audio and sticker take no caption (B1)


class BodyError(ValueError):
    """The message cannot be expressed as a Cloud API body (a field is missing or of the wrong type)."""


# -- bodies -------------------------------------------------------------------------------------------

def _string(content: Mapping[str, Any], key: str, what: str, *, empty: bool = False) -> str:
    value = content.get(key)
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise BodyError(f"{what} needs {key!r} as a{'' if empty else ' non-empty'} string")
    return value


def _optional(content: Mapping[str, Any], key: str) -> str | None:
    value = content.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _ident(value: Any, what: str) -> str:
    out = text(value)
    if out is None:
        raise BodyError(f"{what} needs an id")
    return out


def _text(content: Mapping[str, Any]) -> dict:
    return {"body": _string(content, "body", "a text message"),
            "preview_url": content.get("preview_url") is True}


def _media(kind: str) -> Callable[[Mapping[str, Any]], dict]:
    def build(content: Mapping[str, Any]) -> dict:
        media_id, link = text(content.get("media_id")), _optional(content, "link")
        if media_id:
            out: dict = {"id": media_id}           # uploaded to Meta (B7)
        elif link:
            out = {"link": link}                   # Meta fetches it; a failed fetch comes back as 131053
        else:
            raise BodyError(f"a {kind} message needs 'link' or 'media_id'")
        caption = _optional(content, "caption")
        if caption and kind in CAPTION_KINDS:
            out["caption"] = caption
        filename = _optional(content, "filename")
        if filename and kind == "document":
            out["filename"] = filename
        return out
    return build


def _template(content: Mapping[str, Any]) -> dict:
    language = content.get("language")
    code = language.get("code") if isinstance(language, Mapping) else language
    if not isinstance(code, str) or not code.strip():
        raise BodyError("a template message needs 'language' (the approved translation's code, e.g. en_US)")
    out: dict = {"name": _string(content, "name", "a template message"), "language": {"code": code}}
    components = content.get("components")
    if components is not None:
        if not isinstance(components, list):
            raise BodyError("a template message's 'components' must be a list")
        out["components"] = components            # already Cloud API components with parameters
    return out


def _interactive(content: Mapping[str, Any]) -> dict:
    given = content.get("cloud_api")
    if isinstance(given, Mapping):
        return dict(given)   # Meta's own object, as a Cloud API integration sent it (the /graph facade)
    kind = str(content.get("type") or "").lower()   # Meta documents lowercase (B1)
    out: dict = {"type": kind}
    header = content.get("header")
    if isinstance(header, str) and header.strip():
        out["header"] = {"type": "text", "text": header}
    elif isinstance(header, Mapping) and header:
        out["header"] = dict(header)               # a media header, already in Meta's shape
    out["body"] = {"text": _string(content, "body", "an interactive message")}
    footer = _optional(content, "footer")
    if footer:
        out["footer"] = {"text": footer}
    if kind == "button":
        buttons = content.get("buttons")
        if not isinstance(buttons, list) or not buttons or not all(isinstance(b, Mapping) for b in buttons):
            raise BodyError("a button message needs 'buttons': [{id, title}, ...]")
        out["action"] = {"buttons": [
            {"type": "reply", "reply": {"id": _ident(b.get("id"), "a reply button"),
                                        "title": _string(b, "title", "a reply button")}}
            for b in buttons]}
    elif kind == "list":
        sections = content.get("sections")
        if not isinstance(sections, list) or not sections or not all(isinstance(s, Mapping) for s in sections):
            raise BodyError("a list message needs 'sections': [{title, rows: [...]}, ...]")
        out["action"] = {"button": _string(content, "button", "a list message"),
                         "sections": [_section(s) for s in sections]}
    else:
        raise BodyError("an interactive message's 'type' must be 'button' or 'list'")
    return out


def _section(section: Mapping[str, Any]) -> dict:
    rows = section.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise BodyError("each list section needs 'rows': [{id, title, description?}, ...]")
    out: dict = {}
    title = _optional(section, "title")
    if title:
        out["title"] = title
    out["rows"] = []
    for row in rows:
        item = {"id": _ident(row.get("id"), "a list row"), "title": _string(row, "title", "a list row")}
        description = _optional(row, "description")
        if description:
            item["description"] = description
        out["rows"].append(item)
    return out


def _coordinate(content: Mapping[str, Any], key: str) -> float:
    value = content.get(key)
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):
        raise BodyError(f"a location message needs {key!r} as a number")
    return number


def _location(content: Mapping[str, Any]) -> dict:
    out: dict = {"latitude": _coordinate(content, "latitude"), "longitude": _coordinate(content, "longitude")}
    for key in ("name", "address"):
        if _optional(content, key):
            out[key] = content[key]
    return out


def _contacts(content: Mapping[str, Any]) -> list:
    cards = content.get("contacts")
    if not isinstance(cards, list) or not cards or not all(isinstance(c, Mapping) for c in cards):
        raise BodyError("a contacts message needs 'contacts': a list of contact cards")
    return [dict(card) for card in cards]


def _reaction(content: Mapping[str, Any]) -> dict:
    return {"message_id": _ident(content.get("message_id"), "a reaction"),
            "emoji": _string(content, "emoji", "a reaction", empty=True)}   # "" removes the reaction


BUILDERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "text": _text, "template": _template, "interactive": _interactive, "location": _location,
    "contacts": _contacts, "reaction": _reaction, **{kind: _media(kind) for kind in MEDIA_KINDS},
}


def recipient(message: OutboundMessage) -> str:
    if message.to_kind == "phone":
        digits = phone_digits(message.to)
        if digits is None:
            raise BodyError("the recipient is not an E.164 phone number")
        return digits                              # Meta takes the digits; '+' is optional (B)
    if message.to_kind == "bsuid":
        # UNVERIFIED: newer Graph versions are said to accept a business-scoped user id as recipient,
        # but the field's name is not confirmed ("recipient" is a guess nobody has checked), so the
        # BSUID goes into "to". Confirm against Meta's changelog before relying on it.
        return _ident(message.to, "a BSUID recipient")
    raise BodyError(f"WhatsApp cannot send to a {message.to_kind or 'unknown'} address")


def build_body(message: OutboundMessage) -> dict:
    """The JSON body for ``message`` (protocols.md B1). Raises BodyError."""
    content = message.content if isinstance(message.content, Mapping) else {}
    if message.kind == "read":
        # Marks this and every earlier message in the thread read; answered {"success": true}.
        body = {"messaging_product": "whatsapp", "status": "read",
                "message_id": _ident(content.get("message_id"), "a read receipt")}
        if isinstance(content.get("typing_indicator"), Mapping):
            body["typing_indicator"] = dict(content["typing_indicator"])   # "typing…" until the reply goes
        return body
    build = BUILDERS.get(message.kind)
    if build is None:
        raise BodyError(f"WhatsApp has no message kind {message.kind!r}")
    body: dict = {"messaging_product": "whatsapp", "recipient_type": "individual",
                  "to": recipient(message), "type": message.kind, message.kind: build(content)}
    reply_to = text(message.reply_to)
    if reply_to and message.kind != "reaction":    # a reaction names its message itself
        body["context"] = {"message_id": reply_to}
    if text(message.id):
        # Echoed in every status webhook of this message: settles an "unknown" send (<= 512 chars).
        body["biz_opaque_callback_data"] = text(message.id)
    return body


# -- HTTP ---------------------------------------------------------------------------------------------

_sessions = provider_http.ProcessSession(pool_connections=4, pool_maxsize=64)


def session() -> requests.Session:
    """One keep-alive session per process (created lazily, again in a forked child)."""
    return _sessions.get()


def endpoint(channel: Mapping[str, Any]) -> str:
    settings = channel.get("settings") or {}
    base = (settings.get("api_base_url") or DEFAULT_BASE).rstrip("/")
    version = (settings.get("graph_version") or DEFAULT_VERSION).strip("/")
    return f"{base}/{version}/{quote(str(channel['external_id']), safe='')}/messages"


def timeouts(settings: Mapping[str, Any]) -> tuple[float, float]:
    """(connect, read) seconds; ``send_timeout_s`` overrides the read timeout, or both as [connect, read]."""
    return provider_http.send_timeouts(settings, CONNECT_TIMEOUT, READ_TIMEOUT)


retry_after = provider_http.retry_after   # Retry-After as seconds; None when absent or unreadable


def _nothing_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request went out (refused, DNS, connect timeout,
    proxy, certificate). Anything else may have come after the request was written."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError)):
        return True
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    if isinstance(cause, (NewConnectionError, ConnectTimeoutError)):
        return True
    # urllib3 reports a TLS failure the same way during the handshake and mid-answer; only a
    # rejected certificate is surely from the handshake.
    while cause is not None:
        if isinstance(cause, (ssl.SSLCertVerificationError, CertificateError)):
            return True
        cause = cause.args[0] if getattr(cause, "args", None) and isinstance(cause.args[0], BaseException) else None
    return False


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def interpret(message: OutboundMessage, resp: requests.Response) -> SendResult:
    status, data = resp.status_code, _json(resp)
    if 200 <= status < 300:
        if message.kind == "read":
            if isinstance(data, dict) and data.get("success") is False:
                return SendResult("failed", error_code=str(status),
                                  reason="Meta answered success=false to the read receipt")
            return SendResult("sent")
        messages = data.get("messages") if isinstance(data, dict) else None
        first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        wamid = text(first.get("id"))
        if wamid:
            return SendResult("sent", provider_message_id=wamid)
        return SendResult("unknown", error_code=str(status),
                          reason=f"Meta answered {status} without a message id; the status webhook "
                                 "(biz_opaque_callback_data) will tell whether it went out")
    if 300 <= status < 400:
        return SendResult("failed", error_code=str(status), channel_problem=True,
                          reason=f"the Graph endpoint answered a redirect ({status}): set the channel's "
                                 "api_base_url to the Graph host itself")
    digits = phone_digits(message.to) if message.to_kind == "phone" else None
    return errors.classify(status, data, retry_after(resp.headers), private=(message.to or "", digits or ""))


def _post(message: OutboundMessage, url: str, body: dict, token: str,
          timeout: tuple[float, float]) -> SendResult:
    try:
        resp = session().post(url, json=body, headers={"Authorization": f"Bearer {token}"},
                              timeout=timeout, allow_redirects=False)
    except requests.ConnectionError as exc:
        if _nothing_sent(exc):
            return SendResult("retry", retry_after_s=errors.SERVER_ERROR_DELAY,
                              reason=f"could not connect to the Graph API ({type(exc).__name__}); nothing was "
                                     "sent, trying again later")
        return SendResult("unknown", reason="the connection to the Graph API dropped after the request was "
                                            "sent; the status webhook will tell whether it went out")
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader) as exc:
        return SendResult("failed", channel_problem=True,
                          reason=f"the request could not be made ({type(exc).__name__}): check the channel's "
                                 "api_base_url and access_token")
    except requests.Timeout:                       # ReadTimeout: Meta may have accepted it
        return SendResult("unknown", reason=f"the Graph API did not answer within {timeout[1]:g} s; the status "
                                            "webhook will tell whether it went out")
    except Exception as exc:                       # a truncated answer, or anything unforeseen mid-request
        log.warning("whatsapp send %s: %s during the request", message.id, type(exc).__name__)
        return SendResult("unknown", reason=f"the request failed midway ({type(exc).__name__}); the status "
                                            "webhook will tell whether it went out")
    with resp:
        return interpret(message, resp)


def send(message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> SendResult:
    if not isinstance(message, OutboundMessage):
        return SendResult("failed", reason=f"expected an OutboundMessage, got {type(message).__name__}")
    channel = channel or {}
    token = (credentials or {}).get("access_token")
    if not isinstance(token, str) or not token.strip():
        return SendResult("failed", channel_problem=True,
                          reason="the channel has no access_token: add the WhatsApp system user's token")
    if not text(channel.get("external_id")):
        return SendResult("failed", channel_problem=True,
                          reason="the channel has no external_id: set it to the phone number id")
    try:
        body = build_body(message)
    except BodyError as exc:
        return SendResult("failed", reason=f"cannot build the WhatsApp message: {exc}")
    result = _post(message, endpoint(channel), body, token.strip(), timeouts(channel.get("settings") or {}))
    if message.kind == "read" and result.outcome == "unknown":
        # Marking read is idempotent and has no status webhook to reconcile with: just send it again.
        result = SendResult("retry", retry_after_s=READ_RETRY_DELAY, reason=result.reason)
    if result.outcome != "sent":
        log.info("whatsapp send %s: %s %s", message.id, result.outcome, result.error_code or "")
    return result

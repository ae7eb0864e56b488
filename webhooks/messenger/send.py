"""Send one message through the Messenger Platform Send API (Messenger and Instagram DMs).

``POST {api_base_url}/{graph_version}/{external_id}/messages`` with the channel's
``page_access_token`` (protocols C2). The defaults are ``https://graph.facebook.com`` and
``v24.0``; an Instagram-Login app sets ``settings.api_base_url`` to
``https://graph.instagram.com`` and its Instagram user token as ``page_access_token``.

The token travels in an ``Authorization: Bearer`` header, never in the query string: a URL
ends up in proxy logs and in the text of network exceptions, a header does not.

The answer is classified, never raised (``SendResult``):

* ``sent``: 2xx with ``message_id`` (a ``mark_seen`` answer has only ``recipient_id``);
* ``retry``: rate limits (codes 4, 17, 32, 613, 80006, HTTP 429: Retry-After or 60 s),
  transient errors (codes 1, 2, 1200, ``is_transient``, HTTP 5xx: Retry-After or 30 s),
  and a connection that failed before the request went out (5 s);
* ``failed``: outside the messaging window (10 + 2018278 / 2018108 / 2018065), the person
  is unavailable (551), no matching user / invalid parameter (100), permissions and tokens
  (190, 102, 3, 10, 200-299, 230: ``channel_problem``), anything else 4xx with Meta's message;
* ``unknown``: the request may have reached Meta (read timeout, connection dropped after
  sending, 2xx without a message id): the worker reconciles — ``message.metadata`` carries our
  message id and comes back in the echo.

Reasons never carry the recipient id or the message text.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v24.0"
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 15.0
POOL_MAXSIZE = 64

TEXT_LIMIT = 2000                # characters of message.text
METADATA_LIMIT = 1000            # characters of message.metadata
QUICK_REPLY_LIMIT = 13
QUICK_REPLY_TITLE_LIMIT = 20
QUICK_REPLY_PAYLOAD_LIMIT = 1000

RATE_LIMIT_DELAY_S = 60.0        # rate limits without Retry-After
TRANSIENT_DELAY_S = 30.0         # codes 1/2/1200 and 5xx without Retry-After
NETWORK_DELAY_S = 5.0            # nothing was sent: connection refused, DNS, connect timeout
MAX_RETRY_AFTER_S = 24 * 3600.0
REASON_LIMIT = 300

ATTACHMENT_TYPES = {"image": "image", "sticker": "image", "video": "video", "audio": "audio",
                    "document": "file", "file": "file"}
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80006})
TRANSIENT_CODES = frozenset({1, 2, 1200})
WINDOW_SUBCODES = frozenset({2018278, 2018108, 2018065})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({3, 10, 230}) | frozenset(range(200, 300))

# -- HTTP session -------------------------------------------------------------------------

_sessions = provider_http.ProcessSession(pool_connections=8, pool_maxsize=POOL_MAXSIZE)


def session() -> requests.Session:
    """One keep-alive session per process (created lazily, again in a forked child)."""
    return _sessions.get()


# -- helpers -------------------------------------------------------------------------------

class Unsendable(Exception):
    """The message cannot be expressed on this platform: a permanent failure before any request."""

    def __init__(self, reason: str, code: str = "unsupported"):
        super().__init__(reason)
        self.reason = reason
        self.code = code



def scrub(text: str, *secrets: str | None) -> str:
    """``text`` without the given values (recipient, message text) nor anything phone-like."""
    return provider_http.scrub(text, *secrets, limit=REASON_LIMIT)


def private_values(message: OutboundMessage) -> tuple[str | None, ...]:
    """What a reason must never repeat: the recipient and the texts of the message."""
    content = message.content if isinstance(message.content, Mapping) else {}
    return (message.to, *(content.get(key) for key in ("body", "caption", "header", "footer")))


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), else ``default``; at most a day."""
    seconds = provider_http.retry_after(headers)
    return default if seconds is None else min(seconds, MAX_RETRY_AFTER_S)


def _chain(exc: BaseException):
    """The exception and everything it wraps (args, .reason, __cause__, __context__)."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend([current.__cause__, current.__context__])


def network_outcome(exc: requests.RequestException, label: str) -> SendResult:
    """A network failure: ``retry`` when nothing can have been sent, ``unknown`` when it may have."""
    name = type(exc).__name__
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)):
        return SendResult("failed", error_code="config", channel_problem=True,
                          reason=f"the channel's {label} API address or token cannot be used ({name}): "
                                 "check settings.api_base_url and the credentials")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return SendResult("retry", retry_after_s=NETWORK_DELAY_S, error_code="network",
                          reason=f"timed out connecting to {label}; nothing was sent, try again later")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return SendResult("unknown", error_code="network",
                          reason=f"{label} did not answer in time; the message may have been sent")
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        # TLS handshake / proxy CONNECT: both happen before the request is written.
        return SendResult("retry", retry_after_s=NETWORK_DELAY_S, error_code="network",
                          reason=f"could not open a connection to {label} ({name}); nothing was sent")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(e, (NewConnectionError, ConnectTimeoutError)) for e in _chain(exc)):
            return SendResult("retry", retry_after_s=NETWORK_DELAY_S, error_code="network",
                              reason=f"could not connect to {label}; nothing was sent, try again later")
    return SendResult("unknown", error_code="network",
                      reason=f"the connection to {label} failed after the request went out ({name}); "
                             "the message may have been sent")


# -- building the request ------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if isinstance(value, Mapping):   # a Cloud API style header {"type": "text", "text": ...}
        value = value.get("text")
    return value if isinstance(value, str) and value.strip() else None


def _check_text(text: str, what: str, label: str) -> str:
    if len(text) > TEXT_LIMIT:
        raise Unsendable(f"the {what} is {len(text)} characters; {label} allows at most {TEXT_LIMIT}",
                         code="too_long")
    return text


def _quick_replies(buttons: Any, label: str) -> list[dict]:
    if not isinstance(buttons, list) or not buttons:
        raise Unsendable("an interactive button message needs at least one button", code="invalid")
    if len(buttons) > QUICK_REPLY_LIMIT:
        raise Unsendable(f"{len(buttons)} buttons; {label} quick replies allow at most {QUICK_REPLY_LIMIT}",
                         code="too_many")
    replies = []
    for button in buttons:
        title = button.get("title") if isinstance(button, Mapping) else None
        if not isinstance(title, str) or not title.strip():
            raise Unsendable("every button needs a title", code="invalid")
        if len(title) > QUICK_REPLY_TITLE_LIMIT:
            raise Unsendable(f"a button title is {len(title)} characters; {label} quick replies allow "
                             f"at most {QUICK_REPLY_TITLE_LIMIT}", code="too_long")
        payload = button.get("id")
        payload = str(payload) if payload not in (None, "") else title
        if len(payload) > QUICK_REPLY_PAYLOAD_LIMIT:
            raise Unsendable(f"a button id is longer than {QUICK_REPLY_PAYLOAD_LIMIT} characters", code="too_long")
        replies.append({"content_type": "text", "title": title, "payload": payload})
    return replies


def _message(message: OutboundMessage, label: str) -> dict:
    """The Send API ``message`` object for this kind, or Unsendable."""
    kind, content = message.kind, message.content if isinstance(message.content, Mapping) else {}
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body.strip():
            raise Unsendable("the text message is empty", code="invalid")
        return {"text": _check_text(body, "text", label)}
    if kind in ATTACHMENT_TYPES:
        if _text(content.get("caption")):
            raise Unsendable(f"{label} attachments carry no caption: send the caption as its own text message",
                             code="unsupported")
        link, media_id = content.get("link"), content.get("media_id")
        if isinstance(link, str) and link:
            payload = {"url": link, "is_reusable": True}
        elif media_id not in (None, ""):
            payload = {"attachment_id": str(media_id)}   # from the Attachment Upload API
        else:
            raise Unsendable(f"the {kind} has neither a link nor a media id", code="invalid")
        return {"attachment": {"type": ATTACHMENT_TYPES[kind], "payload": payload}}
    if kind == "interactive":
        if content.get("type") != "button":
            raise Unsendable(f"interactive {content.get('type') or 'messages'} are not supported on {label}; "
                             "only buttons (sent as quick replies)", code="unsupported")
        body = _text(content.get("body"))
        if body is None:
            raise Unsendable("the interactive message has no body text", code="invalid")
        text = "\n\n".join(part for part in (_text(content.get("header")), body, _text(content.get("footer")))
                           if part)
        return {"text": _check_text(text, "text", label),
                "quick_replies": _quick_replies(content.get("buttons"), label)}
    if kind == "reaction":
        raise Unsendable(f"reactions are not supported on {label} through the Send API", code="unsupported")
    if kind in ("location", "contacts", "template"):
        raise Unsendable(f"{kind} messages are not supported on {label}", code="unsupported")
    raise Unsendable(f"{kind or 'this kind of'} messages are not supported on {label}", code="unsupported")


def build_payload(message: OutboundMessage, label: str = "Messenger") -> dict:
    """The JSON body of the Send API request, or Unsendable."""
    if not isinstance(message.to, str) or not message.to:
        raise Unsendable("the message has no recipient", code="invalid")
    recipient = {"id": message.to}
    if message.kind == "read":
        return {"recipient": recipient, "sender_action": "mark_seen"}
    body = _message(message, label)
    if message.id:
        body["metadata"] = str(message.id)[:METADATA_LIMIT]
    payload: dict[str, Any] = {"recipient": recipient}
    if message.tag:
        payload["messaging_type"] = "MESSAGE_TAG"
        payload["tag"] = message.tag
    else:
        payload["messaging_type"] = "RESPONSE"
    payload["message"] = body
    return payload


def endpoint(channel: Mapping[str, Any]) -> str:
    settings = channel.get("settings") if isinstance(channel.get("settings"), Mapping) else {}
    base = (settings.get("api_base_url") or DEFAULT_API_BASE).rstrip("/")
    version = str(settings.get("graph_version") or DEFAULT_GRAPH_VERSION).strip("/")
    return f"{base}/{version}/{channel.get('external_id')}/messages"


# -- classifying the answer ----------------------------------------------------------------

def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(status: int, headers: Mapping[str, str], data: Any, message: OutboundMessage,
             label: str = "Messenger") -> SendResult:
    """The outcome of one Send API answer (HTTP status, headers, parsed JSON or None)."""
    data = data if isinstance(data, Mapping) else {}
    if 200 <= status < 300:
        mid = data.get("message_id")
        if isinstance(mid, str) and mid:
            return SendResult("sent", provider_message_id=mid)
        if message.kind == "read" and "error" not in data:
            return SendResult("sent")
        return SendResult("unknown", error_code=str(status),
                          reason=f"{label} accepted the request but returned no message id; "
                                 "reconcile before sending again")

    error = data.get("error") if isinstance(data.get("error"), Mapping) else {}
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    text = error.get("error_user_msg") or error.get("message") or ""
    said = scrub(str(text), *private_values(message)) if text else ""
    said = said or f"HTTP {status}"
    error_code = str(code) if code is not None else str(status)
    where = f"(code {code}/{subcode})" if subcode is not None else f"(code {error_code})"

    if code in RATE_LIMIT_CODES or status == 429:
        return SendResult("retry", retry_after_s=retry_after(headers, RATE_LIMIT_DELAY_S), error_code=error_code,
                          reason=f"{label} rate limit reached {where}; try again later")
    if code == 10 and (subcode in WINDOW_SUBCODES or "allowed window" in str(text).lower()):
        if message.tag:
            reason = (f"outside the messaging window even with the {message.tag} tag {where}: HUMAN_AGENT "
                      "allows replies up to 7 days after the customer's last message")
        else:
            reason = (f"outside the 24-hour window {where}: use a message tag such as HUMAN_AGENT "
                      "within 7 days of the customer's last message")
        return SendResult("failed", error_code=error_code, reason=reason)
    if code == 551:
        return SendResult("failed", error_code=error_code,
                          reason=f"the person isn't available right now {where}: they may have blocked the "
                                 f"{'account' if label == 'Instagram' else 'Page'} or deactivated their account")
    if code in TOKEN_CODES:
        return SendResult("failed", error_code=error_code, channel_problem=True,
                          reason=f"{label} rejected the access token {where}: generate a new page_access_token "
                                 f"for the channel ({said})")
    if code in PERMISSION_CODES:
        return SendResult("failed", error_code=error_code, channel_problem=True,
                          reason=f"the app lacks a permission to message through this channel {where}: check "
                                 f"the token's messaging permission and the app's access ({said})")
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
        return SendResult("retry", retry_after_s=retry_after(headers, TRANSIENT_DELAY_S), error_code=error_code,
                          reason=f"{label} had a temporary problem {where}; try again later")
    if code == 100:
        if subcode == 2018001 or "no matching user" in str(error.get("error_data") or text).lower():
            return SendResult("failed", error_code=error_code,
                              reason=f"no matching user {where}: the recipient id is not a customer of this "
                                     f"{label} channel")
        return SendResult("failed", error_code=error_code, reason=f"{label} refused a parameter {where}: {said}")
    if 400 <= status < 500:
        return SendResult("failed", error_code=error_code, reason=f"{label} refused the message {where}: {said}")
    return SendResult("failed", error_code=error_code,
                      reason=f"unexpected answer from {label} (HTTP {status}) {where}: {said}")


# -- the send ------------------------------------------------------------------------------

def send(message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any],
         *, label: str = "Messenger") -> SendResult:
    """Send ``message`` on ``channel`` and classify the answer. Never raises for Meta or the network."""
    channel = channel if isinstance(channel, Mapping) else {}
    credentials = credentials if isinstance(credentials, Mapping) else {}
    token = credentials.get("page_access_token")
    if not isinstance(token, str) or not token:
        return SendResult("failed", error_code="config", channel_problem=True,
                          reason=f"the {label} channel has no page_access_token")
    if not channel.get("external_id"):
        return SendResult("failed", error_code="config", channel_problem=True,
                          reason=f"the {label} channel has no external id (Page / account id)")
    try:
        payload = build_payload(message, label)
    except Unsendable as exc:
        return SendResult("failed", error_code=exc.code, reason=exc.reason)
    try:
        response = session().post(
            endpoint(channel), data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=provider_http.send_timeouts(channel.get("settings"), CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            allow_redirects=False)
    except requests.RequestException as exc:
        return network_outcome(exc, label)
    try:
        data = response.json()
    except ValueError:
        data = None
    return classify(response.status_code, response.headers, data, message, label)

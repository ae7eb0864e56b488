"""Send one message through Twilio's Messages API (SMS, MMS and Twilio's WhatsApp senders).

``POST {api_base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`` with HTTP basic auth
(``account_sid``, ``auth_token``) and a form body (protocols D4):

* ``To`` — the customer's number; ``whatsapp:+…`` when the channel is a WhatsApp sender
  (``settings.channel == "whatsapp"`` or an external id starting with ``whatsapp:``);
* ``From`` — the channel's number (prefixed the same way), or ``MessagingServiceSid`` when the
  external id is a Messaging Service SID (``MG…``);
* ``Body`` (≤ 1600 characters), ``MediaUrl`` for media sent by link (Body = the caption),
  ``StatusCallback`` = ``settings.status_callback_url`` when set.

Text and media by link are sent; a ``read`` needs nothing on SMS and is reported sent
without an id. Everything else (media by provider id, interactive, location, contacts,
reactions, templates) fails before any request with a reason.

The answer is classified, never raised (``SendResult``):

* ``sent``: 2xx with ``sid``;
* ``retry``: 20429 / HTTP 429 (Retry-After or 1 s), 21611 queue full (60 s), HTTP 5xx
  (Retry-After or 5 s), a connection that failed before the request went out (5 s);
* ``failed``: 21610 (``opted_out``: the recipient replied STOP), 21211 / 21614 / 21408 /
  21612 / 21619 / 21617 / 21620 / 63016 with readable reasons, 20003 / HTTP 401 / 20404 /
  20005 / 21606 / 21659 (``channel_problem``), anything else 4xx with Twilio's message;
* ``unknown``: the request may have reached Twilio (read timeout, connection dropped after
  sending, 2xx without a sid): the worker reconciles before any resend.

Reasons never carry the phone numbers or the message text.
"""
from __future__ import annotations

from typing import Any, Mapping

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult

DEFAULT_API_BASE = "https://api.twilio.com"
API_VERSION = "2010-04-01"
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 15.0
POOL_MAXSIZE = 64

BODY_LIMIT = 1600
MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})

TOO_MANY_REQUESTS_DELAY_S = 1.0  # 20429 / HTTP 429 without Retry-After
QUEUE_FULL_DELAY_S = 60.0        # 21611: the sender's queue is full
SERVER_ERROR_DELAY_S = 5.0       # HTTP 5xx without Retry-After
NETWORK_DELAY_S = 5.0            # nothing was sent: connection refused, DNS, connect timeout
MAX_RETRY_AFTER_S = 24 * 3600.0
REASON_LIMIT = 300

# Permanent refusals with a reason that says what to do (none of them repeats a number).
REASONS = {
    21211: "the 'To' number is not a valid phone number",
    21614: "the 'To' number is not a mobile number and cannot receive SMS",
    21408: "sending to this country/region is not enabled on the Twilio account "
           "(Console → Messaging → Settings → Geo permissions)",
    21612: "Twilio cannot route a message between this sender and the 'To' number "
           "(sender not capable for this destination, or unsupported carrier)",
    21619: "a message needs a text body, a media URL or a content template",
    21617: "the text is longer than Twilio's 1600-character limit",
    21620: "the media URL is invalid or Twilio cannot fetch it",
    63016: "outside the WhatsApp 24-hour window: only an approved template (ContentSid) can be sent",
}
# The channel itself is misconfigured: pause it rather than burn the queue.
CHANNEL_REASONS = {
    20003: "Twilio rejected the credentials: check the channel's account_sid/auth_token",
    20005: "the Twilio account is not active: check the account in the Twilio Console",
    20404: "Twilio does not know this account or resource: check the channel's account_sid",
    21606: "the channel's number is not a message-capable Twilio number of this account for this destination",
    21659: "the channel's 'From' is not a Twilio number or short code of this account",
}

# -- HTTP session -------------------------------------------------------------------------

_sessions = provider_http.ProcessSession(pool_connections=8, pool_maxsize=POOL_MAXSIZE)


def session() -> requests.Session:
    """One keep-alive session per process (created lazily, again in a forked child)."""
    return _sessions.get()


# -- helpers -------------------------------------------------------------------------------

class Unsendable(Exception):
    """The message cannot be sent through Twilio as it is: a permanent failure before any request."""

    def __init__(self, reason: str, code: str = "unsupported"):
        super().__init__(reason)
        self.reason = reason
        self.code = code



def scrub(text: str, *secrets: str | None) -> str:
    """``text`` without the given values (recipient, message text) nor anything phone-like."""
    return provider_http.scrub(text, *secrets, limit=REASON_LIMIT)


def private_values(message: OutboundMessage) -> tuple[str | None, ...]:
    content = message.content if isinstance(message.content, Mapping) else {}
    return (message.to, content.get("body"), content.get("caption"))


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


def network_outcome(exc: requests.RequestException) -> SendResult:
    """A network failure: ``retry`` when nothing can have been sent, ``unknown`` when it may have."""
    name = type(exc).__name__
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)):
        return SendResult("failed", error_code="config", channel_problem=True,
                          reason=f"the channel's Twilio API address or credentials cannot be used ({name}): "
                                 "check settings.api_base_url, account_sid and auth_token")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return SendResult("retry", retry_after_s=NETWORK_DELAY_S, error_code="network",
                          reason="timed out connecting to Twilio; nothing was sent, try again later")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return SendResult("unknown", error_code="network",
                          reason="Twilio did not answer in time; the message may have been sent")
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        # TLS handshake / proxy CONNECT: both happen before the request is written.
        return SendResult("retry", retry_after_s=NETWORK_DELAY_S, error_code="network",
                          reason=f"could not open a connection to Twilio ({name}); nothing was sent")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(e, (NewConnectionError, ConnectTimeoutError)) for e in _chain(exc)):
            return SendResult("retry", retry_after_s=NETWORK_DELAY_S, error_code="network",
                              reason="could not connect to Twilio; nothing was sent, try again later")
    return SendResult("unknown", error_code="network",
                      reason=f"the connection to Twilio failed after the request went out ({name}); "
                             "the message may have been sent")


# -- building the request ------------------------------------------------------------------

def is_whatsapp(channel: Mapping[str, Any]) -> bool:
    settings = channel.get("settings") if isinstance(channel.get("settings"), Mapping) else {}
    external_id = str(channel.get("external_id") or "")
    return str(settings.get("channel") or "").lower() == "whatsapp" or external_id.lower().startswith("whatsapp:")


def _address(value: str, whatsapp: bool) -> str:
    value = value.strip()
    if whatsapp and not value.lower().startswith("whatsapp:"):
        return "whatsapp:" + value
    return value


def build_form(message: OutboundMessage, channel: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The form fields of the Messages API request (repeatable keys), or Unsendable."""
    if not isinstance(message.to, str) or not message.to.strip():
        raise Unsendable("the message has no recipient number", code="invalid")
    settings = channel.get("settings") if isinstance(channel.get("settings"), Mapping) else {}
    whatsapp = is_whatsapp(channel)
    external_id = str(channel.get("external_id") or "").strip()
    form = [("To", _address(message.to, whatsapp))]
    if external_id.startswith("MG"):
        form.append(("MessagingServiceSid", external_id))
    else:
        form.append(("From", _address(external_id, whatsapp)))

    kind = message.kind
    content = message.content if isinstance(message.content, Mapping) else {}
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body.strip():
            raise Unsendable("the text message is empty", code="invalid")
        if len(body) > BODY_LIMIT:
            raise Unsendable(f"the text is {len(body)} characters; Twilio allows at most {BODY_LIMIT}",
                             code="too_long")
        form.append(("Body", body))
    elif kind in MEDIA_KINDS:
        link = content.get("link")
        if not isinstance(link, str) or not link:
            if content.get("media_id"):
                raise Unsendable("Twilio sends media by URL only: a media id cannot be sent", code="unsupported")
            raise Unsendable(f"the {kind} has no link", code="invalid")
        caption = content.get("caption")
        if isinstance(caption, str) and caption:
            if len(caption) > BODY_LIMIT:
                raise Unsendable(f"the caption is {len(caption)} characters; Twilio allows at most {BODY_LIMIT}",
                                 code="too_long")
            form.append(("Body", caption))
        form.append(("MediaUrl", link))
    elif kind == "template":
        raise Unsendable("templates are not supported through Twilio yet (they need a Content API ContentSid); "
                         "send a text instead", code="unsupported")
    else:
        raise Unsendable(f"{kind or 'this kind of'} messages are not supported through Twilio", code="unsupported")

    callback = settings.get("status_callback_url")
    if isinstance(callback, str) and callback:
        form.append(("StatusCallback", callback))
    return form


def endpoint(channel: Mapping[str, Any], account_sid: str) -> str:
    settings = channel.get("settings") if isinstance(channel.get("settings"), Mapping) else {}
    base = (settings.get("api_base_url") or DEFAULT_API_BASE).rstrip("/")
    return f"{base}/{API_VERSION}/Accounts/{account_sid}/Messages.json"


# -- classifying the answer ----------------------------------------------------------------

def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(status: int, headers: Mapping[str, str], data: Any, message: OutboundMessage,
             channel: Mapping[str, Any] | None = None) -> SendResult:
    """The outcome of one Messages API answer (HTTP status, headers, parsed JSON or None)."""
    data = data if isinstance(data, Mapping) else {}
    if 200 <= status < 300:
        sid = data.get("sid")
        if isinstance(sid, str) and sid:
            return SendResult("sent", provider_message_id=sid)
        return SendResult("unknown", error_code=str(status),
                          reason="Twilio accepted the request but returned no message sid; "
                                 "reconcile before sending again")

    code = _int(data.get("code"))
    error_code = str(code) if code is not None else str(status)
    where = f"(Twilio {code})" if code is not None else f"(HTTP {status})"
    external_id = str((channel or {}).get("external_id") or "") if isinstance(channel, Mapping) else ""
    said = data.get("message")
    said = scrub(said, *private_values(message), external_id) if isinstance(said, str) and said else f"HTTP {status}"

    if code == 20429 or status == 429:
        return SendResult("retry", retry_after_s=retry_after(headers, TOO_MANY_REQUESTS_DELAY_S),
                          error_code=error_code, reason=f"Twilio: too many concurrent requests {where}; try again")
    if code == 21611:
        return SendResult("retry", retry_after_s=retry_after(headers, QUEUE_FULL_DELAY_S), error_code=error_code,
                          reason=f"the sender's Twilio queue is full {where}; try again later")
    if code == 21610:
        return SendResult("failed", error_code=error_code, opted_out=True,
                          reason=f"the recipient replied STOP {where}: Twilio blocks messages to them until "
                                 "they reply START")
    if code == 20003 or status == 401:
        return SendResult("failed", error_code=error_code, channel_problem=True,
                          reason=f"{CHANNEL_REASONS[20003]} {where}")
    if code in CHANNEL_REASONS:
        return SendResult("failed", error_code=error_code, channel_problem=True,
                          reason=f"{CHANNEL_REASONS[code]} {where}")
    if code in REASONS:
        return SendResult("failed", error_code=error_code, reason=f"{REASONS[code]} {where}")
    if status >= 500:
        return SendResult("retry", retry_after_s=retry_after(headers, SERVER_ERROR_DELAY_S), error_code=error_code,
                          reason=f"Twilio had a temporary problem {where}; try again later")
    if 400 <= status < 500:
        return SendResult("failed", error_code=error_code, reason=f"Twilio refused the message {where}: {said}")
    return SendResult("failed", error_code=error_code,
                      reason=f"unexpected answer from Twilio (HTTP {status}) {where}: {said}")


# -- the send ------------------------------------------------------------------------------

def send(message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> SendResult:
    """Send ``message`` on ``channel`` and classify the answer. Never raises for Twilio or the network."""
    channel = channel if isinstance(channel, Mapping) else {}
    credentials = credentials if isinstance(credentials, Mapping) else {}
    if message.kind == "read":
        return SendResult("sent")   # no read receipts to send on SMS (nor through Twilio's WhatsApp)
    sid, token = credentials.get("account_sid"), credentials.get("auth_token")
    if not isinstance(sid, str) or not sid or not isinstance(token, str) or not token:
        return SendResult("failed", error_code="config", channel_problem=True,
                          reason="the Twilio channel has no account_sid/auth_token")
    if not channel.get("external_id"):
        return SendResult("failed", error_code="config", channel_problem=True,
                          reason="the Twilio channel has no external id (its number or Messaging Service SID)")
    try:
        form = build_form(message, channel)
    except Unsendable as exc:
        return SendResult("failed", error_code=exc.code, reason=exc.reason)
    try:
        response = session().post(endpoint(channel, sid), data=form, auth=(sid, token),
                                  headers={"Accept": "application/json"},
                                  timeout=provider_http.send_timeouts(channel.get("settings"), CONNECT_TIMEOUT_S,
                                                                      READ_TIMEOUT_S),
                                  allow_redirects=False)
    except requests.RequestException as exc:
        return network_outcome(exc)
    try:
        data = response.json()
    except ValueError:
        data = None
    return classify(response.status_code, response.headers, data, message, channel)

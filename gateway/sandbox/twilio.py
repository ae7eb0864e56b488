"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (protocols.md D4).

HTTP basic auth (AccountSid or an API key SID, and a non-empty secret, or exactly the
configured ``twilio_auth_token``); form body with To, From or MessagingServiceSid,
Body and/or MediaUrl (repeatable), optional StatusCallback. SMS and ``whatsapp:+…``.
Answers 201 with the Message resource; errors as ``{code, message, more_info, status}``.
Status callbacks are form POSTs to StatusCallback (or ``{gateway_url}/webhooks/twilio``)
signed with X-Twilio-Signature (D2, D3). ``GET …/Messages/{Sid}.json`` fetches a message.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import time
from email.utils import formatdate
from urllib.parse import parse_qsl

from gateway.sandbox import errors, ids
from gateway.sandbox.callbacks import Step, twilio_request
from gateway.sandbox.core import Req, Response, Sandbox

API_VERSION = "2010-04-01"
_E164 = re.compile(r"^\+?[1-9]\d{6,14}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SEPARATORS = re.compile(r"[\s\-().]")
GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
                "¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENDED = set("^{}\\[~]|€\f")


def segments(body: str) -> int:
    """SMS segments: GSM-7 (160, or 153 per part) when every character fits, else UCS-2 (70, or 67 per part)."""
    if not body:
        return 1
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in body):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in body)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _date(ts: float | None = None) -> str:
    return formatdate(ts if ts is not None else time.time(), usegmt=False).replace("-0000", "+0000")


def split_address(value: str) -> tuple[str, str]:
    """('whatsapp', '+34…') or ('sms', '+34…')."""
    if value.lower().startswith("whatsapp:"):
        return "whatsapp", value[len("whatsapp:"):]
    return "sms", value


def _auth(sb: Sandbox, req: Req, account_sid: str) -> tuple[str | None, Response | None]:
    """The secret the client used, or the 401 answer."""
    header = req.header("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    user = password = ""
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
    expected = sb.faults.effective((account_sid,))["twilio_auth_token"]
    ok = bool(password) and (user == account_sid or (user.startswith("SK") and len(user) == 34))
    if ok and expected is not None and user == account_sid:
        ok = password == expected
    if not ok:
        status, body = errors.twilio_error(20003)
        return None, (status, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    return password, None


class Invalid(Exception):
    def __init__(self, code: int, to: str = "", from_: str = ""):
        super().__init__(code)
        self.code, self.to, self.from_ = code, to, from_


def _valid_url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and len(value) > 8 and " " not in value


def validate(form: dict[str, list[str]]) -> dict:
    """The send's fields, normalised; raises Invalid with Twilio's error code."""
    first = {k: v[0] for k, v in form.items() if v}
    to = first.get("To", "").strip()
    sender = first.get("From", "").strip()
    service = first.get("MessagingServiceSid", "").strip()
    body = first.get("Body", "")
    media = [u for u in form.get("MediaUrl", []) if u]
    content_sid = first.get("ContentSid", "")
    callback = first.get("StatusCallback", "")
    if not to:
        raise Invalid(21604)
    if not sender and not service:
        raise Invalid(21603)
    to_channel, to_number = split_address(to)
    if not _E164.match(_SEPARATORS.sub("", to_number)):
        raise Invalid(21211, to=to)
    if sender:
        from_channel, from_number = split_address(sender)
        bare = _SEPARATORS.sub("", from_number)
        if not (_E164.match(bare) or (from_channel == "sms" and (_SHORT_CODE.match(bare)
                                                                 or _ALPHANUMERIC.match(from_number)))):
            raise Invalid(21212, from_=sender)
        if from_channel != to_channel:
            raise Invalid(21910)
    if service and not (service.startswith("MG") and len(service) == 34):
        raise Invalid(21603)
    if not body and not media and not content_sid:
        raise Invalid(21619)
    if len(body) > 1600:
        raise Invalid(21617)
    if len(media) > 10:
        raise Invalid(21623)
    if any(not _valid_url(u) for u in media):
        raise Invalid(21620)
    if callback and not _valid_url(callback):
        raise Invalid(21609)
    return {"to": to, "to_number": "+" + _SEPARATORS.sub("", to_number).lstrip("+"), "channel": to_channel,
            "from": sender or None, "service": service or None, "body": body, "media": media,
            "content_sid": content_sid or None, "callback": callback or None}


def _finish(sb: Sandbox, rec: dict, answer: Response, error_code: int | None = None) -> Response:
    rec["http_status"] = answer[0]
    rec["error_code"] = error_code
    sb.store.record(rec)
    sb.store.count("requests", f"twilio:{answer[0]}")
    return answer


def send(sb: Sandbox, req: Req, account_sid: str) -> Response:
    form: dict[str, list[str]] = {}
    for key, value in parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(key, []).append(value)
    flat = {k: (v if len(v) > 1 or k == "MediaUrl" else v[0]) for k, v in form.items()}
    to = form.get("To", [""])[0]
    sender = form.get("From", [""])[0]
    service = form.get("MessagingServiceSid", [""])[0]
    rec = {"provider": "twilio", "method": req.method, "path": req.path,
           "channel_id": service or split_address(sender)[1] or None, "account_sid": account_sid,
           "recipient": split_address(to)[1] or None, "type": None, "body": flat, "provider_message_id": None,
           "received_at": req.received_at, "http_status": 0, "error_code": None, "fault": None}
    secret, denied = _auth(sb, req, account_sid)
    if denied:
        return _finish(sb, rec, denied, 20003)
    scopes = [account_sid]
    if service:
        scopes.append(service)
    if sender:
        scopes.append(split_address(sender)[1])
    if to:
        scopes.append("to:" + ids.digits(to))
    cfg = sb.faults.effective(scopes)
    sb.sleep(sb.faults.latency_s(cfg))
    fault = sb.faults.infrastructure(cfg)
    if fault == "timeout":
        rec["fault"] = "timeout"
        sb.sleep(cfg["timeout_s"])
    elif fault == "429":
        rec["fault"] = "429"
        status, body = errors.twilio_error(20429)
        return _finish(sb, rec, (status, body, {"Retry-After": errors.retry_after(cfg["retry_after_s"])}), 20429)
    elif fault == "5xx":
        rec["fault"] = "5xx"
        code = 20503 if cfg["status_5xx_code"] == 503 else 20500
        status, body = errors.twilio_error(code)
        status = cfg["status_5xx_code"]
        body["status"] = status
        return _finish(sb, rec, (status, body, None), code)
    try:
        fields = validate(form)
    except Invalid as bad:
        status, body = errors.twilio_error(bad.code, to=bad.to, from_=bad.from_)
        return _finish(sb, rec, (status, body, None), bad.code)
    rec["type"] = "media" if fields["media"] else ("content" if fields["content_sid"] else "text")
    code = sb.faults.provider_error(cfg, "twilio_error_code")
    failure = None
    if code is not None:
        if code >= 30000 or cfg["async_failure"] or code in errors.TWILIO_ASYNC_ERRORS:
            failure = code
            rec["fault"] = f"async:{code}"
        else:
            rec["fault"] = rec["fault"] or f"error:{code}"
            status, body = errors.twilio_error(code, to=fields["to"], from_=fields["from"] or "")
            if status == 429:
                return _finish(sb, rec, (status, body, {"Retry-After": errors.retry_after(cfg["retry_after_s"])}), code)
            return _finish(sb, rec, (status, body, None), code)
    sid = ids.twilio_sid("MM" if fields["media"] and fields["channel"] == "sms" else "SM")
    rec["provider_message_id"] = sid
    now = _date()
    via_service = fields["service"] is not None and fields["from"] is None
    resource = {
        "body": fields["body"],
        "num_segments": "0" if via_service else ("1" if fields["channel"] == "whatsapp" else
                                                 str(segments(fields["body"]))),
        "direction": "outbound-api",
        "from": fields["from"],
        "to": fields["to"],
        "date_updated": now,
        "price": None,
        "error_message": None,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json",
        "account_sid": account_sid,
        "num_media": str(len(fields["media"])),
        "status": "accepted" if via_service else "queued",
        "messaging_service_sid": fields["service"],
        "sid": sid,
        "date_sent": None,
        "date_created": now,
        "error_code": None,
        "price_unit": "USD",
        "api_version": API_VERSION,
        "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"},
    }
    sb.store.put_twilio(resource)
    answer = _finish(sb, rec, (201, resource, None))
    _schedule(sb, cfg, rec, fields, account_sid, sid, secret, failure)
    return answer


def fetch(sb: Sandbox, req: Req, account_sid: str, sid: str) -> Response:
    _, denied = _auth(sb, req, account_sid)
    if denied:
        return denied
    resource = sb.store.get_twilio(sid)
    if resource is None or resource["account_sid"] != account_sid:
        status, body = errors.twilio_error(
            20404, message=f"The requested resource /{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json "
                           "was not found")
        return status, body, None
    return 200, resource, None


def list_messages(sb: Sandbox, req: Req, account_sid: str) -> Response:
    """``GET …/Messages.json?To=&From=&PageSize=``: newest first, one page (what reconciling needs)."""
    _, denied = _auth(sb, req, account_sid)
    if denied:
        return denied
    try:
        size = max(1, min(1000, int(req.arg("PageSize") or 50)))
    except ValueError:
        status, body = errors.twilio_error(20001, message="PageSize must be an integer")
        return status, body, None
    items = sb.store.list_twilio(account_sid, to=req.arg("To") or None, from_=req.arg("From") or None, limit=size)
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
    return 200, {"messages": items, "page": 0, "page_size": size, "first_page_uri": uri, "next_page_uri": None,
                 "previous_page_uri": None, "uri": uri, "start": 0, "end": max(0, len(items) - 1)}, None


def _schedule(sb: Sandbox, cfg: dict, rec: dict, fields: dict, account_sid: str, sid: str, secret: str,
              failure: int | None) -> None:
    if not cfg["callbacks"]:
        return
    url = fields["callback"] or (cfg["gateway_url"].rstrip("/") + "/webhooks/twilio" if cfg["gateway_url"] else None)
    if not url:
        return
    key = cfg["twilio_auth_token"] or secret
    whatsapp = fields["channel"] == "whatsapp"
    sender = fields["from"] or (("whatsapp:" if whatsapp else "") + cfg["twilio_from"])
    delay = cfg["status_delay_ms"] / 1000.0

    def step(status: str) -> Step:
        def build():
            params = [("AccountSid", account_sid), ("ApiVersion", API_VERSION), ("From", sender),
                      ("MessageSid", sid), ("MessageStatus", status), ("SmsSid", sid), ("SmsStatus", status),
                      ("To", fields["to"])]
            if fields["service"]:
                params.append(("MessagingServiceSid", fields["service"]))
            if status in ("undelivered", "failed"):
                params += [("ErrorCode", str(failure)), ("ErrorMessage", errors.twilio_error_message(failure))]
            if whatsapp:
                params += [("ChannelPrefix", "whatsapp"), ("ChannelToAddress", fields["to_number"]),
                           ("ChannelInstallSid", "XE" + "0" * 32)]
            elif status in ("delivered", "undelivered"):
                params.append(("RawDlrDoneDate", time.strftime("%y%m%d%H%M", time.gmtime())))
            return twilio_request(url, params, key)

        def sent(http_status):
            rec["callback_status"] = status
            rec["callback_http_status"] = http_status
            changes = {"status": status, "date_updated": _date()}
            if status == "sent":
                changes["date_sent"] = changes["date_updated"]
            if failure is not None:
                changes.update(error_code=failure, error_message=errors.twilio_error_message(failure))
            sb.store.update_twilio(sid, **changes)
        return Step(f"twilio:{status}", delay, build, sid, sent)

    if failure is not None:
        words = ["undelivered" if failure >= 30000 else "failed"]
    else:
        words = [w for w in cfg["statuses"] if w in ("sent", "delivered") or (w == "read" and whatsapp)]
    sb.dispatcher.submit([step(w) for w in words])

"""``say``: play the customer. Posts one signed inbound text webhook to the gateway, shaped like the provider's.

    say("http://127.0.0.1:8000", phone_number_id="1234", from_number="+34600000001", text="Hola",
        app_secret="…")                                   # WhatsApp Cloud API → /webhooks/whatsapp
    say(url, channel_kind="twilio", to_number="+14155238886", from_number="+34600000001", text="Hola",
        auth_token="…", account_sid="AC…")               # Twilio SMS (or whatsapp:+… addresses) → /webhooks/twilio
    say(url, channel_kind="messenger", page_id="…", from_number="<PSID>", text="Hola", app_secret="…")

Returns the gateway's HTTP status. ``inbound(...)`` does the same and also returns the
provider message id and the exact bytes sent.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import requests

from gateway.sandbox import ids
from gateway.sandbox.callbacks import (META_USER_AGENT, TWILIO_USER_AGENT, meta_dumps, meta_signature,
                                       twilio_signature, whatsapp_envelope)
from gateway.sandbox.twilio import API_VERSION, segments

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
KINDS = ("whatsapp", "twilio", "messenger", "instagram")


def whatsapp_text(*, phone_number_id: str, from_number: str, text: str, name: str | None = None,
                  waba_id: str = "SANDBOX_WABA", display_phone_number: str = "15550001234",
                  message_id: str | None = None) -> dict:
    """A Cloud API inbound text notification (A3/A4): contacts[].profile.name and wa_id, a fresh wamid, now."""
    wa_id = ids.digits(from_number)
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name or f"Sandbox {wa_id[-4:]}"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": message_id or ids.wamid(wa_id), "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": text}}],
    }
    return whatsapp_envelope(waba_id, value)


def twilio_text(*, account_sid: str, from_number: str, to_number: str, text: str, name: str | None = None,
                message_sid: str | None = None) -> list[tuple[str, str]]:
    """The form parameters of a Twilio inbound message (D1), SMS or WhatsApp (whatsapp:+… addresses)."""
    sid = message_sid or ids.twilio_sid("SM")
    whatsapp = from_number.lower().startswith("whatsapp:")
    if whatsapp and not to_number.lower().startswith("whatsapp:"):
        to_number = "whatsapp:" + to_number
    params = [("AccountSid", account_sid), ("ApiVersion", API_VERSION), ("Body", text), ("From", from_number),
              ("MessageSid", sid), ("NumMedia", "0"), ("NumSegments", "1" if whatsapp else str(segments(text))),
              ("SmsMessageSid", sid), ("SmsSid", sid), ("SmsStatus", "received"), ("To", to_number)]
    if whatsapp:
        wa_id = ids.digits(from_number)
        params += [("MessageType", "text"), ("ProfileName", name or f"Sandbox {wa_id[-4:]}"), ("WaId", wa_id)]
    return params


def messenger_text(*, page_id: str, psid: str, text: str, platform: str = "messenger",
                   message_id: str | None = None) -> dict:
    now = int(time.time() * 1000)
    event = {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": now,
             "message": {"mid": message_id or ids.mid(), "text": text}}
    return {"object": "instagram" if platform == "instagram" else "page",
            "entry": [{"id": page_id, "time": now, "messaging": [event]}]}


def inbound(gateway_url: str, *, channel_kind: str = "whatsapp", phone_number_id: str | None = None,
            from_number: str, text: str, app_secret: str | None = None, name: str | None = None,
            to_number: str | None = None, account_sid: str | None = None, auth_token: str | None = None,
            page_id: str | None = None, waba_id: str = "SANDBOX_WABA", display_phone_number: str = "15550001234",
            timeout: float = 10.0, session: requests.Session | None = None) -> dict[str, Any]:
    """Send one inbound text; returns {"status", "message_id", "url", "body" (bytes sent), "response" (text)}."""
    base = gateway_url.rstrip("/")
    http = session or requests
    if channel_kind == "whatsapp":
        if not phone_number_id:
            raise ValueError("phone_number_id is required for a WhatsApp message")
        if not app_secret:
            raise ValueError("app_secret is required: the gateway rejects unsigned Meta webhooks")
        doc = whatsapp_text(phone_number_id=phone_number_id, from_number=from_number, text=text, name=name,
                            waba_id=waba_id, display_phone_number=display_phone_number)
        raw = meta_dumps(doc)
        url = base + "/webhooks/whatsapp"
        headers = {"Content-Type": "application/json", "User-Agent": META_USER_AGENT,
                   "X-Hub-Signature-256": meta_signature(raw, app_secret)}
        message_id = doc["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    elif channel_kind == "twilio":
        to = to_number or phone_number_id
        key = auth_token or app_secret
        if not to:
            raise ValueError("to_number (the business number the customer writes to) is required for Twilio")
        if not key:
            raise ValueError("auth_token is required: the gateway checks X-Twilio-Signature")
        params = sorted(twilio_text(account_sid=account_sid or DEFAULT_ACCOUNT_SID, from_number=from_number,
                                    to_number=to, text=text, name=name))
        url = base + "/webhooks/twilio"
        raw = urlencode(params).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "User-Agent": TWILIO_USER_AGENT,
                   "X-Twilio-Signature": twilio_signature(url, params, key)}
        message_id = dict(params)["MessageSid"]
    elif channel_kind in ("messenger", "instagram"):
        page = page_id or phone_number_id
        if not page:
            raise ValueError("page_id is required for Messenger / Instagram")
        if not app_secret:
            raise ValueError("app_secret is required: the gateway rejects unsigned Meta webhooks")
        doc = messenger_text(page_id=page, psid=from_number, text=text, platform=channel_kind)
        raw = meta_dumps(doc)
        url = base + f"/webhooks/{channel_kind}"
        headers = {"Content-Type": "application/json", "User-Agent": META_USER_AGENT,
                   "X-Hub-Signature-256": meta_signature(raw, app_secret)}
        message_id = doc["entry"][0]["messaging"][0]["message"]["mid"]
    else:
        raise ValueError(f"channel_kind must be one of {', '.join(KINDS)}, not {channel_kind!r}")
    resp = http.post(url, data=raw, headers=headers, timeout=timeout)
    return {"status": resp.status_code, "message_id": message_id, "url": url, "body": raw, "response": resp.text}


def say(gateway_url: str, *, channel_kind: str = "whatsapp", phone_number_id: str | None = None,
        from_number: str, text: str, app_secret: str | None = None, name: str | None = None,
        **more: Any) -> int:
    """Post one signed inbound text webhook to the gateway; returns the HTTP status it answered."""
    return inbound(gateway_url, channel_kind=channel_kind, phone_number_id=phone_number_id, from_number=from_number,
                   text=text, app_secret=app_secret, name=name, **more)["status"]

"""Twilio's shapes for the ``/twilio`` facade: ids, the Message resource, and the status callbacks.

Ids: a message's ``sid`` is ``SM`` + the gateway message id's 32 hex digits, an account's ``AC`` + the account id's;
both read back without a table. The resource and the callbacks are made from the live, encrypted records
(personal data - the customer's number, the text - decrypted at the time, never kept elsewhere), so after an
erasure there is nothing to show or send.

Status callbacks (protocols.md D2) go to a ``twilio``-format webhook endpoint per account, API key and
StatusCallback URL, for the messages linked to it (``message_callbacks``): ``message.sent`` becomes
``MessageStatus=sent``, ``message.status`` delivered / read / failed (``undelivered`` once the provider had taken
the message, ``failed`` before), with ``ErrorCode``/``ErrorMessage`` when it failed. Form-encoded, signed with
``X-Twilio-Signature`` by the delivery (webhook_delivery.sign_twilio).
"""
from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import urlencode

from gateway import keystore, messages
from gateway.crypto import field_aad

API_VERSION = "2010-04-01"
TYPES = ("message.sent", "message.status")
UNKNOWN_ERROR = 30008             # Twilio's "Unknown error"
# Meta's codes a WhatsApp channel may fail with → the Twilio code a Twilio integration handles the same way.
_META_TO_TWILIO = {"131047": 63016, "131026": 63024, "131050": 63049, "131049": 63049, "131056": 63018,
                   "130429": 63018, "131051": 63021, "131052": 63019, "131053": 63019}
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
           "¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")


# -- ids ----------------------------------------------------------------------------------------------------------

def account_sid(account_id) -> str:
    return "AC" + _uuid(account_id).hex


def message_sid(message_id) -> str:
    return "SM" + _uuid(message_id).hex


def parse_sid(sid: str, prefix: str) -> uuid.UUID | None:
    """The gateway id inside an ``AC…``/``SM…`` sid of ours, or None for any other string."""
    if not isinstance(sid, str) or not sid.startswith(prefix) or not _HEX32.match(sid[2:]):
        return None
    return uuid.UUID(hex=sid[2:])


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# -- senders ------------------------------------------------------------------------------------------------------

def is_whatsapp(kind: str, external_id: str, settings: dict) -> bool:
    if kind == "whatsapp":
        return True
    return str((settings or {}).get("channel") or "").lower() == "whatsapp" or \
        str(external_id or "").lower().startswith("whatsapp:")


def sender(kind: str, external_id: str, settings: dict) -> tuple[str | None, str | None]:
    """(``from`` as Twilio writes it, the MessagingServiceSid or None) of a channel."""
    settings = settings or {}
    wa = is_whatsapp(kind, external_id, settings)
    if kind == "whatsapp":
        digits = "".join(ch for ch in str(settings.get("display_phone_number") or "") if ch.isdigit())
        return (f"whatsapp:+{digits}" if digits else None), None
    ext = str(external_id or "")
    service = settings.get("messaging_service_sid") or (ext if ext.startswith("MG") else None)
    if ext.startswith("MG"):
        number = settings.get("phone_number") or settings.get("from")
        if not number:
            return None, service
        ext = str(number)
    number = ext[len("whatsapp:"):] if ext.lower().startswith("whatsapp:") else ext
    return (("whatsapp:" if wa else "") + number), service


def address(phone: str | None, whatsapp: bool) -> str | None:
    if not phone:
        return None
    phone = phone if phone.startswith("+") else "+" + phone
    return ("whatsapp:" if whatsapp else "") + phone


# -- the resource ------------------------------------------------------------------------------------------------

_ROWS = f"""
SELECT {messages.MESSAGE_COLUMNS}, m.account_id, m.contact_id, m.sent_at, ch.kind AS channel_kind, ch.external_id,
       ch.settings AS channel_settings, ph.id AS phone_identity_id, ph.address_enc AS phone_enc
FROM unnest(%s::uuid[], %s::uuid[]) AS q (account_id, message_id)
JOIN messages m ON m.account_id = q.account_id AND m.id = q.message_id AND m.direction = 'outbound'
JOIN contacts c ON c.account_id = m.account_id AND c.id = m.contact_id
JOIN channels ch ON ch.account_id = m.account_id AND ch.id = m.channel_id
LEFT JOIN LATERAL (SELECT i.id, i.address_enc FROM contact_identities i WHERE i.account_id = m.account_id
                   AND i.contact_id = m.contact_id AND i.kind = 'phone' ORDER BY i.created_at LIMIT 1) ph ON true
"""


class Message:
    """One outbound message decrypted, with its sender and customer, as Twilio names them."""

    def __init__(self, row: dict, key):
        account_id = str(row["account_id"])
        self.row = row
        self.account_id = account_id
        self.message = messages.decrypt_message(None, account_id, row, key=key)
        self.whatsapp = is_whatsapp(row["channel_kind"], row["external_id"], row["channel_settings"])
        self.sender, self.service = sender(row["channel_kind"], row["external_id"], row["channel_settings"])
        phone = key.decrypt_text(row["phone_enc"], field_aad("contact_identities", "address", account_id,
                                                            row["phone_identity_id"])) if row["phone_enc"] else None
        self.to = address(phone, self.whatsapp)

    @property
    def sid(self) -> str:
        return message_sid(self.row["id"])

    @property
    def body(self) -> str:
        content = self.message["content"] or {}
        if self.message["kind"] == "text":
            return self.message["text"] or content.get("body") or ""
        return content.get("caption") or ""

    def status(self, status: str | None = None) -> str:
        status = status or self.row["status"]
        if status in ("queued", "retry_scheduled", "received"):
            return "queued"
        if status == "played":
            return "read"
        if status == "failed":
            return "undelivered" if self.row["sent_at"] is not None else "failed"
        return status

    def error(self, code=None, reason=None) -> tuple[int | None, str | None]:
        code = code if code is not None else self.row["error_code"]
        reason = reason if reason is not None else self.row["error_reason"]
        if code is None and reason is None:
            return None, None
        return twilio_error_code(self.row["channel_kind"], code), reason or "Unknown error"

    def resource(self) -> dict:
        r, m = self.row, self.message
        sid, ac = self.sid, account_sid(self.account_id)
        status = self.status()
        code, text = self.error() if status in ("failed", "undelivered") else (None, None)
        body = self.body
        media = 1 if m["kind"] not in ("text",) and (m["content"] or {}).get("link") else 0
        uri = f"/{API_VERSION}/Accounts/{ac}/Messages/{sid}.json"
        return {
            "sid": sid, "account_sid": ac, "from": self.sender, "to": self.to, "body": body, "status": status,
            "direction": "outbound-api", "api_version": API_VERSION,
            "date_created": rfc2822(r["created_at"]), "date_updated": rfc2822(r["updated_at"]),
            "date_sent": rfc2822(r["sent_at"]) if r["sent_at"] else None,
            "num_segments": str(segments(body) if body else 1),
            "num_media": str(media), "price": None, "price_unit": "USD", "error_code": code, "error_message": text,
            "messaging_service_sid": self.service, "uri": uri,
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{ac}/Messages/{sid}/Media.json",
                                 "feedback": f"/{API_VERSION}/Accounts/{ac}/Messages/{sid}/Feedback.json"}}

    def callback(self, event_type: str, data: dict) -> dict | None:
        """Twilio's status callback parameters for one event, or None (nothing Twilio would report)."""
        if event_type == "message.sent":
            status, code, reason = "sent", None, None
        elif event_type == "message.status" and data.get("status"):
            status, code, reason = self.status(data["status"]), data.get("error_code"), data.get("reason")
        else:
            return None
        params = {"MessageSid": self.sid, "SmsSid": self.sid, "AccountSid": account_sid(self.account_id),
                  "MessageStatus": status, "SmsStatus": status, "ApiVersion": API_VERSION}
        if self.sender:
            params["From"] = self.sender
        if self.to:
            params["To"] = self.to
        if self.service:
            params["MessagingServiceSid"] = self.service
        if self.whatsapp:
            params["ChannelPrefix"] = "whatsapp"
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = str(twilio_error_code(self.row["channel_kind"], code))
            params["ErrorMessage"] = reason or "Unknown error"
        return params


def twilio_error_code(channel_kind: str, code) -> int:
    text = "" if code is None else str(code)
    if channel_kind == "whatsapp":
        return _META_TO_TWILIO.get(text, UNKNOWN_ERROR)
    return int(text) if text.isdigit() and len(text) == 5 else UNKNOWN_ERROR


def rfc2822(when) -> str | None:
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return format_datetime(when.astimezone(timezone.utc).replace(microsecond=0))


def segments(body: str) -> int:
    """SMS segments as Twilio counts them: GSM-7 160 (153 each when split), else UCS-2 70 (67)."""
    if all(ch in _GSM for ch in body):
        return 1 if len(body) <= 160 else math.ceil(len(body) / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def load(conn, pairs: list[tuple]) -> dict:
    """(account id, message id) → Message for the outbound messages found (with their contact's key)."""
    if not pairs:
        return {}
    rows = conn.execute(_ROWS, ([a for a, _ in pairs], [m for _, m in pairs])).fetchall()
    by_account: dict = {}
    for r in rows:
        by_account.setdefault(str(r["account_id"]), []).append(r)
    out = {}
    for account_id, account_rows in by_account.items():
        keys = keystore.load_keys(conn, account_id=account_id, key_ids={r["data_key_id"] for r in account_rows})
        for r in account_rows:
            key = keys.get(r["data_key_id"])
            if key is not None:   # a shredded key: the contact was erased
                out[(account_id, str(r["id"]))] = Message(r, key)
    return out


def bodies(conn, taken: list[dict]) -> dict[int, bytes]:
    """Delivery seq → the status callback's form body, for claimed deliveries of twilio endpoints (rows of
    webhook_delivery's claim). Missing: nothing to send (past retention, the message or contact gone)."""
    wanted = [t for t in taken if t["type"] in TYPES and t["message_id"]]
    found = load(conn, list({(t["account_id"], t["message_id"]) for t in wanted}))
    out = {}
    for t in wanted:
        m = found.get((t["account_id"], t["message_id"]))
        params = None if m is None else m.callback(t["type"], json.loads(t["data"]))
        if params is not None:
            out[t["seq"]] = urlencode(params).encode("ascii")
    return out

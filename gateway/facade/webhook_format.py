"""Meta's WhatsApp webhooks, made from the gateway's events for a ``meta``-format webhook endpoint.

An integration written for the Cloud API (pywa, whatsapp-api-js, its own handler) points its webhook at the
gateway's delivery of these and receives, unchanged, what Meta would have sent (protocols.md A3-A5): inbound
messages as ``value.messages`` with the customer in ``value.contacts``, and its messages' progress as
``value.statuses``, each in Meta's envelope, one per POST, signed with ``X-Hub-Signature-256``.

What the integration knows of the gateway's ids: a status names the message by the facade's id
(``ids.mint(message id)``, what the facade answered the send with), and a customer's reply or reaction to one of
the business's messages names that id too, so the integration can match it; a customer's own message keeps
the provider's wamid. A media message's ``id`` is the gateway's inbound media id, which the facade's
``GET /graph/v{N}/{media-id}`` serves.

Bodies are made at claim time, like the standard ones' content: personal data (phone number, name, text) is
read and decrypted from the live records, never from the event, so after an erasure there is nothing to send
(the delivery ends as an event past its retention does). A claimed batch costs one query, and one per
account whose contact keys are not cached.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime

from gateway import keystore, messages
from gateway.crypto import field_aad
from gateway.facade import ids

TYPES = ("message.received", "message.sent", "message.status")
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
CARRIED = ("context", "referral", "errors", "identity")   # a message's keys besides its type's object
GENERIC_ERROR = 131000                                    # Meta's "Something went wrong"
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# Each message once however many deliveries name it, with its contact's key, phone and BSUID identities, its
# channel, the message a reply or reaction points at (by the provider id's blind index, on the same channel:
# the business's messages are named by the facade's ids), and its media rows in order. Rows of one account
# each: the pairs only select, they join nothing across accounts.
_ROWS = f"""
SELECT {messages.MESSAGE_COLUMNS}, m.account_id, m.contact_id, c.name_enc,
       ch.kind AS channel_kind, ch.external_id, ch.group_id, ch.settings ->> 'display_phone_number' AS display_number,
       ph.id AS phone_identity_id, ph.address_enc AS phone_enc, bs.id AS bsuid_identity_id, bs.address_enc AS bsuid_enc,
       r.id AS reply_id, r.direction AS reply_direction, md.ids AS media_ids
FROM unnest(%s::uuid[], %s::uuid[]) AS q (account_id, message_id)
JOIN messages m ON m.account_id = q.account_id AND m.id = q.message_id
JOIN contacts c ON c.account_id = m.account_id AND c.id = m.contact_id
JOIN channels ch ON ch.account_id = m.account_id AND ch.id = m.channel_id
LEFT JOIN LATERAL (SELECT i.id, i.address_enc FROM contact_identities i WHERE i.account_id = m.account_id
                   AND i.contact_id = m.contact_id AND i.kind = 'phone' ORDER BY i.created_at LIMIT 1) ph ON true
LEFT JOIN LATERAL (SELECT i.id, i.address_enc FROM contact_identities i WHERE i.account_id = m.account_id
                   AND i.contact_id = m.contact_id AND i.kind = 'bsuid' ORDER BY i.created_at LIMIT 1) bs ON true
LEFT JOIN messages r ON m.reply_to_bidx IS NOT NULL AND r.account_id = m.account_id AND r.channel_id = m.channel_id
                    AND r.provider_id_bidx = m.reply_to_bidx
LEFT JOIN LATERAL (SELECT array_agg(x.id::text ORDER BY x.position) AS ids FROM media x
                   WHERE x.account_id = m.account_id AND x.message_id = m.id) md ON m.direction = 'inbound'
"""


def bodies(conn, taken: list[dict]) -> dict[int, bytes]:
    """Delivery seq → Meta's webhook body, for claimed deliveries (rows of webhook_delivery's claim: seq,
    account_id, type, data, created_at, message_id). A delivery missing from the answer has nothing to send:
    its event is past retention, its message or contact is gone, or it is not Meta's to report."""
    wanted = [t for t in taken if t["type"] in TYPES and t["message_id"]]
    if not wanted:
        return {}
    pairs = list({(t["account_id"], t["message_id"]) for t in wanted})
    rows = conn.execute(_ROWS, ([a for a, _ in pairs], [m for _, m in pairs])).fetchall()
    by_account: dict = {}
    for r in rows:
        by_account.setdefault(str(r["account_id"]), []).append(r)
    found: dict = {}
    for account_id, account_rows in by_account.items():
        keys = keystore.load_keys(conn, account_id=account_id, key_ids={r["data_key_id"] for r in account_rows})
        for r in account_rows:
            key = keys.get(r["data_key_id"])
            if key is not None and r["channel_kind"] == "whatsapp":   # a shredded key: the contact was erased
                found[(account_id, str(r["id"]))] = _Message(conn, account_id, r, key)
    out = {}
    for t in wanted:
        m = found.get((t["account_id"], t["message_id"]))
        doc = None if m is None else m.webhook(t["type"], json.loads(t["data"]), t["created_at"])
        if doc is not None:
            out[t["seq"]] = dumps(doc)
    return out


def dumps(doc: dict) -> bytes:
    """Meta's wire form: compact, every non-ASCII character escaped as \\uXXXX (what receivers' HMACs expect)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True, default=str).encode("ascii")


class _Message:
    """One message decrypted, with its customer and channel, ready to be written as Meta's webhook."""

    def __init__(self, conn, account_id: str, row: dict, key):
        self.row = row
        self.message = messages.decrypt_message(conn, account_id, row, key=key)
        self.content = self.message["content"]
        self.name = key.decrypt_text(row["name_enc"], field_aad("contacts", "name", account_id, row["contact_id"]))
        phone = key.decrypt_text(row["phone_enc"], field_aad("contact_identities", "address", account_id,
                                                            row["phone_identity_id"])) if row["phone_enc"] else None
        self.wa_id = phone.lstrip("+") if phone else None
        self.bsuid = (key.decrypt_text(row["bsuid_enc"], field_aad("contact_identities", "address", account_id,
                                                                   row["bsuid_identity_id"]))
                      if row["bsuid_enc"] else None) or _text(self.content.get("user_id"))

    def webhook(self, event_type: str, data: dict, created_at: str | None) -> dict | None:
        if event_type == "message.received":
            if self.message["direction"] != "inbound":
                return None
            return self._envelope({"contacts": [self._card(self.content.get("profile_name") or self.name)],
                                   "messages": [self._inbound()]})
        if self.message["direction"] != "outbound":
            return None
        if event_type == "message.sent":
            status, at = "sent", created_at
        else:
            status, at = data.get("status"), data.get("at")
        if not status:
            return None
        return self._envelope({"contacts": [self._card(self.name)], "statuses": [self._status(status, at, data)]})

    # -- parts --------------------------------------------------------------------------------------------------

    def _envelope(self, value: dict) -> dict:
        r = self.row
        return {"object": "whatsapp_business_account", "entry": [{
            "id": r["group_id"] or r["external_id"],
            "changes": [{"value": {"messaging_product": "whatsapp", "metadata": {
                "display_phone_number": (r["display_number"] or r["external_id"]).lstrip("+"),
                "phone_number_id": r["external_id"]}, **value}, "field": "messages"}]}]}

    def _card(self, name: str | None) -> dict:
        # Meta always sends a profile; a consumer that reads profile.name must find one.
        card: dict = {"profile": {"name": name or ""}}
        if self.wa_id:
            card["wa_id"] = self.wa_id
        if self.bsuid:
            card["user_id"] = self.bsuid
        parent = _text(self.content.get("parent_user_id"))
        if parent:
            card["parent_user_id"] = parent
        return card

    def _inbound(self) -> dict:
        m, content = self.message, self.content
        kind = m["kind"]
        msg: dict = {"from": self.wa_id} if self.wa_id else {"from_user_id": self.bsuid}
        msg.update(id=m["provider_message_id"], timestamp=_seconds(content.get("provider_timestamp"),
                                                                    m["occurred_at"]), type=kind)
        target = self._our_target()
        obj = content.get(kind)
        if isinstance(obj, dict):
            obj = dict(obj)
            if kind in MEDIA_KINDS:
                obj.pop("url", None)   # Meta's short-lived lookaside link: the gateway serves the media itself
                media_ids = self.row["media_ids"] or []
                if media_ids:
                    obj["id"] = media_ids[0]
            if kind == "reaction" and target and obj.get("message_id") == content.get("reply_to_provider_id"):
                obj["message_id"] = target
        if obj is not None:
            msg[kind] = obj
        for name in CARRIED:
            if name in content:
                msg[name] = content[name]
        context = msg.get("context")
        if target and isinstance(context, dict) and context.get("id") == content.get("reply_to_provider_id"):
            msg["context"] = dict(context, id=target)
        return msg

    def _our_target(self) -> str | None:
        """The facade's id of the business's message this one replies or reacts to (None: it points elsewhere)."""
        r = self.row
        return ids.mint(r["reply_id"]) if r["reply_id"] and r["reply_direction"] == "outbound" else None

    def _status(self, status: str, at, data: dict) -> dict:
        item: dict = {"id": ids.mint(self.message["id"]), "status": status,
                      "timestamp": _seconds(None, at or self.message["updated_at"])}
        if self.wa_id:
            item["recipient_id"] = self.wa_id
        elif self.bsuid:
            item["recipient_user_id"] = self.bsuid
        opaque = self.content.get("biz_opaque_callback_data")
        if opaque is not None:
            item["biz_opaque_callback_data"] = opaque
        if status == "failed":
            code = str(data.get("error_code") or "")
            reason = data.get("reason") or "Something went wrong"
            item["errors"] = [{"code": int(code) if code.isdigit() else GENERIC_ERROR, "title": reason,
                               "message": reason, "error_data": {"details": reason}, "href": ERROR_HREF}]
        return item


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _seconds(given, when) -> str:
    """Meta's timestamp: a string of Unix seconds; the provider's own when the message kept it."""
    if isinstance(given, str) and given.isdigit():
        return given
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return str(int(when.timestamp()))


# -- Meta's subscription handshake ------------------------------------------------------------------------------

def verify_subscription(url: str, verify_token: str) -> str | None:
    """What Meta does when a callback URL is saved: ``GET url?hub.mode=subscribe&hub.challenge=<int>&
    hub.verify_token=<token>``, which must answer 200 with the challenge as its body. None when it did; else
    why not, in words (the token is never repeated)."""
    import requests

    from gateway import webhook_delivery
    challenge = str(secrets.randbelow(2 ** 31 - 1) + 1)
    what = "the URL did not answer Meta's subscription verification (GET with hub.mode=subscribe, hub.challenge, " \
           "hub.verify_token)"
    try:
        resp = requests.get(url, params={"hub.mode": "subscribe", "hub.challenge": challenge,
                                         "hub.verify_token": verify_token},
                            timeout=webhook_delivery.timeout_s(), allow_redirects=False,
                            headers={"User-Agent": webhook_delivery.USER_AGENT})
    except requests.RequestException as exc:
        return f"{what}: it could not be reached ({type(exc).__name__})"
    if resp.status_code != 200:
        return (f"{what}: it answered {resp.status_code} instead of 200 with the challenge; check that the "
                "verify_token is the one the integration expects")
    if resp.text.strip() != challenge:
        return f"{what}: it answered 200 but its body is not the hub.challenge sent"
    return None

"""WhatsApp Cloud API webhook bodies -> normalised events (protocols.md A3-A5).

One table maps each webhook ``field`` to a small handler. Every entry, change,
message and status is visited (never only index 0). Nothing is dropped: fields
without a handler, status values the core does not model, and shapes a
handler cannot read all come back as ``Unsupported`` - one bad item never
takes the rest of the request down with it.

``Unsupported.what`` values produced here:

* ``invalid-json`` / ``envelope`` / ``entry`` / ``change`` - the request itself is malformed;
* ``field:<name>`` - a change whose field is not routed yet (known or unknown);
* ``malformed:<field>`` - a handler failed on this change (e.g. no metadata);
* ``message:<reason>`` - one message that could not be represented;
* ``status:<status>`` - one status the core does not model (played, deleted, warning, ...);
* ``errors`` - value-level ``errors[]`` (a problem with the notification itself);
* ``messages:empty`` - a ``messages`` change with no messages, statuses or errors.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from gateway.providers import InboundMessage, NormalisedEvent, StatusUpdate, Unsupported

log = logging.getLogger(__name__)

STATUSES = frozenset({"sent", "delivered", "read", "failed"})

# Known fields that a later task routes; until then they are stored and reported as Unsupported.
NOT_ROUTED_YET = frozenset({
    "message_template_status_update", "message_template_quality_update", "message_template_components_update",
    "template_category_update", "account_update", "phone_number_quality_update", "phone_number_name_update",
    "business_capability_update", "security", "flows", "user_preferences", "smb_message_echoes",
    "smb_app_state_sync", "calls", "history", "account_alerts", "account_review_update",
})

MEDIA_TYPES = ("image", "video", "document", "audio", "sticker")
BSUID_FIELDS = ("user_id", "parent_user_id", "identity_key_hash")


# --- message text renditions (one per message type) -------------------------------------------

def _media(kind: str) -> Callable[[dict], str]:
    def render(msg: dict) -> str:
        media = msg.get(kind) or {}
        caption = media.get("caption")
        if caption:
            return caption
        if kind == "document" and media.get("filename"):
            return media["filename"]
        if kind == "audio" and media.get("voice"):
            return "[voice message]"
        return f"[{kind}]"
    return render


def _text(msg: dict) -> str:
    return (msg.get("text") or {}).get("body") or ""


def _location(msg: dict) -> str:
    loc = msg.get("location") or {}
    named = ", ".join(str(p) for p in (loc.get("name"), loc.get("address")) if p)
    if named:
        return named
    return f"{loc.get('latitude')},{loc.get('longitude')}"


def _contact_name(card: dict) -> str:
    name = card.get("name") or {}
    if name.get("formatted_name"):
        return name["formatted_name"]
    parts = [name.get(k) for k in ("first_name", "middle_name", "last_name") if name.get(k)]
    return " ".join(parts) or "?"


def _contacts(msg: dict) -> str:
    names = [_contact_name(c) for c in msg.get("contacts") or [] if isinstance(c, dict)]
    return ", ".join(names) if names else "[contacts]"


def _interactive(msg: dict) -> str:
    inter = msg.get("interactive")
    if not isinstance(inter, dict):
        return "[unsupported message]"   # type=interactive without the object (see value.errors 131000)
    sub = inter.get("type")
    if sub in ("button_reply", "list_reply"):
        return (inter.get(sub) or {}).get("title") or f"[{sub}]"
    if sub == "nfm_reply":
        return "[form reply]"
    if sub == "call_permission_reply":
        return f"[call permission: {(inter.get(sub) or {}).get('response', '?')}]"
    return "[interactive]"


def _button(msg: dict) -> str:
    button = msg.get("button") or {}
    return button.get("text") or button.get("payload") or "[button]"


def _reaction(msg: dict) -> str:
    return (msg.get("reaction") or {}).get("emoji") or "[reaction removed]"


def _order(msg: dict) -> str:
    items = (msg.get("order") or {}).get("product_items") or []
    return f"[order: {len(items)} items]"


def _system(msg: dict) -> str:
    return (msg.get("system") or {}).get("body") or "[system]"


def _edit(msg: dict) -> str:
    inner = (msg.get("edit") or {}).get("message") or {}
    render = RENDERERS.get(inner.get("type"), _unsupported)
    return "[edited] " + render(inner)


def _unsupported(msg: dict) -> str:
    return "[unsupported message]"


RENDERERS: dict[str, Callable[[dict], str]] = {
    "text": _text,
    **{kind: _media(kind) for kind in MEDIA_TYPES},
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "edit": _edit,
    "revoke": lambda msg: "[message deleted]",
    "request_welcome": lambda msg: "[chat opened]",
    "unsupported": _unsupported,
    "unknown": _unsupported,
}


# --- field handlers ----------------------------------------------------------------------------

def _find_contact(contacts: list, wa_id: str | None, user_id: str | None) -> dict | None:
    cards = [c for c in contacts if isinstance(c, dict)]
    for card in cards:
        if wa_id and str(card.get("wa_id")) == wa_id:
            return card
        if user_id and card.get("user_id") == user_id:
            return card
    if not wa_id and not user_id and len(cards) == 1:
        return cards[0]
    return None


def _message(msg: dict, external_id: str, contacts: list) -> NormalisedEvent:
    message_id = msg.get("id")
    if not message_id:
        return Unsupported("message:no-id")
    kind = msg.get("type") or "unknown"
    wa_id = str(msg["from"]) if msg.get("from") not in (None, "") else None
    contact = _find_contact(contacts, wa_id, msg.get("from_user_id"))
    bsuid = msg.get("from_user_id") or (contact or {}).get("user_id")

    digits = wa_id[1:] if wa_id and wa_id.startswith("+") else wa_id
    if digits and digits.isdigit():
        sender, sender_kind = "+" + digits, "phone"
    elif bsuid:
        # BSUID-only users (no phone number shared): gateway.contacts.IDENTITY_KINDS has no "bsuid" yet.
        sender, sender_kind = str(bsuid), "bsuid"
    else:
        return Unsupported("message:no-sender")

    extra: dict[str, Any] = {}
    if kind in msg and kind not in ("type", "id", "from", "timestamp"):
        extra[kind] = msg[kind]
    for key in ("context", "referral", "errors", "identity"):
        if key in msg:
            extra[key] = msg[key]
    if msg.get("from_user_id"):
        extra["user_id"] = msg["from_user_id"]
    for key in BSUID_FIELDS:
        if contact and contact.get(key) and key not in extra:
            extra[key] = contact[key]
    if contact and (contact.get("profile") or {}).get("username"):
        extra["username"] = contact["profile"]["username"]

    timestamp = msg.get("timestamp")
    return InboundMessage(
        external_id=external_id, sender=sender, sender_kind=sender_kind,
        provider_message_id=str(message_id), kind=kind,
        text=RENDERERS.get(kind, _unsupported)(msg),
        sender_name=((contact or {}).get("profile") or {}).get("name") or None,
        timestamp=None if timestamp is None else str(timestamp),
        extra=extra)


def _error_reason(error: dict) -> str | None:
    title = error.get("title")
    detail = (error.get("error_data") or {}).get("details") or error.get("message")
    parts = [p for p in (title, detail) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return ": ".join(parts) or None


def _status(st: dict, external_id: str) -> NormalisedEvent:
    status = st.get("status")
    if status not in STATUSES:
        return Unsupported(f"status:{status}")
    if not st.get("id"):
        return Unsupported("status:no-id")
    error_code = error_reason = None
    if status == "failed":
        errors = [e for e in st.get("errors") or [] if isinstance(e, dict)]
        if errors:
            code = errors[0].get("code")
            error_code = None if code is None else str(code)
            error_reason = _error_reason(errors[0])
    timestamp = st.get("timestamp")
    callback = st.get("biz_opaque_callback_data")
    return StatusUpdate(
        external_id=external_id, provider_message_id=str(st["id"]), status=status,
        timestamp=None if timestamp is None else str(timestamp),
        error_code=error_code, error_reason=error_reason,
        callback_data=None if callback is None else str(callback))


def _each(items: Any, convert: Callable[[dict], NormalisedEvent], what: str) -> list[NormalisedEvent]:
    out: list[NormalisedEvent] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            out.append(Unsupported(f"{what}:malformed"))
            continue
        try:
            out.append(convert(item))
        except Exception:   # one odd item must not lose its neighbours
            log.warning("whatsapp: could not read one %s item", what, exc_info=True)
            out.append(Unsupported(f"{what}:malformed"))
    return out


def handle_messages(value: dict) -> list[NormalisedEvent]:
    """field=messages: inbound messages, delivery statuses, value-level errors."""
    external_id = str(value["metadata"]["phone_number_id"])
    contacts = value.get("contacts") or []
    contacts = contacts if isinstance(contacts, list) else []
    events = _each(value.get("messages"), lambda m: _message(m, external_id, contacts), "message")
    events += _each(value.get("statuses"), lambda s: _status(s, external_id), "status")
    if value.get("errors"):
        events.append(Unsupported("errors"))
    return events or [Unsupported("messages:empty")]


HANDLERS: dict[str, Callable[[dict], list[NormalisedEvent]]] = {
    "messages": handle_messages,
}


def parse_change(change: Any) -> list[NormalisedEvent]:
    if not isinstance(change, dict):
        return [Unsupported("change")]
    name = change.get("field")
    handler = HANDLERS.get(name) if isinstance(name, str) else None
    if handler is None:   # NOT_ROUTED_YET or never seen: stored, reported, not acted on
        return [Unsupported(f"field:{name}")]
    value = change.get("value")
    try:
        if not isinstance(value, dict):
            raise TypeError("value is not an object")
        return handler(value)
    except Exception:
        log.warning("whatsapp: could not read a %s change", name, exc_info=True)
        return [Unsupported(f"malformed:{name}")]


def parse_body(raw: bytes) -> list[NormalisedEvent]:
    try:
        body = json.loads(raw)
    except (ValueError, TypeError):
        return [Unsupported("invalid-json")]
    entries = body.get("entry") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        return [Unsupported("envelope")]
    events: list[NormalisedEvent] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list) or not changes:
            events.append(Unsupported("entry"))
            continue
        for change in changes:
            events.extend(parse_change(change))
    return events


def channel_ids(raw: bytes) -> list[str]:
    """Distinct metadata.phone_number_id values in order; else the entry ids (WABA ids)."""
    try:
        body = json.loads(raw)
        entries = body.get("entry") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            return []
        phone_ids: list[str] = []
        waba_ids: list[str] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if entry.get("id") not in (None, "") and str(entry["id"]) not in waba_ids:
                waba_ids.append(str(entry["id"]))
            for change in entry.get("changes") or []:
                value = change.get("value") if isinstance(change, dict) else None
                meta = value.get("metadata") if isinstance(value, dict) else None
                pid = meta.get("phone_number_id") if isinstance(meta, dict) else None
                if pid not in (None, "") and str(pid) not in phone_ids:
                    phone_ids.append(str(pid))
        return phone_ids or waba_ids
    except Exception:
        return []

"""Message objects -> InboundMessage: customers' messages (field ``messages``) and echoes of what the
business sent from the WhatsApp Business app on a coexistence number (field ``smb_message_echoes``).
"""
from __future__ import annotations

import json
from typing import Any

from gateway.providers import IdentityChange, InboundMessage, Media, NormalisedEvent, Unsupported
from webhooks.whatsapp.identity import Party, identify
from webhooks.whatsapp.render import MEDIA_TYPES, render
from webhooks.whatsapp.values import e164, phone_digits, text, utc_from_seconds

# Message keys that are not the type's own object but still belong to the message.
CARRIED = ("context", "referral", "errors", "identity")
ENVELOPE_KEYS = frozenset({"id", "from", "to", "timestamp", "type", *CARRIED})
NUMBER_CHANGED = frozenset({"user_changed_number", "customer_changed_number"})   # new name, older name


def _obj(msg: dict, key: str) -> dict:
    value = msg.get(key)
    return value if isinstance(value, dict) else {}


def media_refs(msg: dict) -> tuple[Media, ...]:
    kind = msg.get("type")
    if kind == "edit":   # an edited caption re-announces the (possibly new) media
        return media_refs(_obj(_obj(msg, "edit"), "message"))
    if kind not in MEDIA_TYPES:
        return ()
    obj = _obj(msg, kind)
    media_id, url = text(obj.get("id")), text(obj.get("url"))
    if not media_id and not url:
        return ()
    return (Media(kind=kind, provider_media_id=media_id, url=url, mime_type=text(obj.get("mime_type")),
                  sha256=text(obj.get("sha256")), filename=text(obj.get("filename")),
                  caption=text(obj.get("caption"))),)


def reply_target(msg: dict) -> str | None:
    """The message this one replies to, reacts to, edits or deletes."""
    kind = msg.get("type")
    if kind == "reaction":
        return text(_obj(msg, "reaction").get("message_id"))
    if kind in ("edit", "revoke"):
        return text(_obj(msg, kind).get("original_message_id"))
    return text(_obj(msg, "context").get("id"))


def flow_response(msg: dict) -> dict | None:
    """A WhatsApp Flow's answers: Meta sends them as a JSON *string* inside nfm_reply."""
    inter = _obj(msg, "interactive")
    if inter.get("type") != "nfm_reply":
        return None
    answer = _obj(inter, "nfm_reply").get("response_json")
    if isinstance(answer, dict):
        return answer
    try:
        parsed = json.loads(answer) if isinstance(answer, str) else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def content_of(msg: dict, party: Party) -> dict:
    content: dict[str, Any] = {}
    kind = msg.get("type")
    if isinstance(kind, str) and kind in msg and kind not in ENVELOPE_KEYS:
        content[kind] = msg[kind]
    for key in CARRIED:
        if key in msg:
            content[key] = msg[key]
    content.update(party.ids)
    answers = flow_response(msg)
    if answers is not None:
        content["flow_response"] = answers
    return content


def _message(msg: dict, party: Party, external_id: str, direction: str) -> InboundMessage:
    timestamp = text(msg.get("timestamp"))
    return InboundMessage(
        external_id=external_id, sender=party.address, sender_kind=party.kind,
        provider_message_id=str(msg["id"]), kind=text(msg.get("type")) or "unknown",
        text=render(msg), sender_name=party.name, timestamp=timestamp,
        occurred_at=utc_from_seconds(timestamp), content=content_of(msg, party), media=media_refs(msg),
        reply_to=reply_target(msg), aliases=party.aliases, direction=direction)


def identity_change(msg: dict, party: Party, external_id: str) -> IdentityChange | None:
    system = _obj(msg, "system")
    if msg.get("type") != "system" or system.get("type") not in NUMBER_CHANGED or party.kind != "phone":
        return None
    # wa_id is the current field; new_wa_id is the older docs' name (not in the fixtures, kept for old payloads).
    new = e164(system.get("wa_id")) or e164(system.get("new_wa_id"))
    if not new or new == party.address:
        return None
    return IdentityChange(external_id=external_id, kind="phone", old=party.address, new=new)


def inbound(msg: dict, external_id: str, contacts: list[dict]) -> list[NormalisedEvent]:
    """A customer's message; a number change also moves the customer's identity (after the message,
    which stays in the old number's thread history)."""
    if not text(msg.get("id")):
        return [Unsupported("message:no-id")]
    party = identify(msg.get("from"), msg.get("from_user_id"), msg.get("from_parent_user_id"), contacts)
    if party is None:
        return [Unsupported("message:no-sender")]
    events: list[NormalisedEvent] = [_message(msg, party, external_id, "inbound")]
    change = identity_change(msg, party, external_id)
    if change is not None:
        events.append(change)
    return events


def echo(msg: dict, external_id: str, contacts: list[dict], business_number: str | None) -> NormalisedEvent:
    """What the business sent from the Business app: an outbound message to the customer in ``to``.

    Some published samples have from/to the other way round (the customer in ``from``,
    the business's display number in ``to``); the side that is the business's own number
    is never the customer.
    """
    if not text(msg.get("id")):
        return Unsupported("echo:no-id")
    side = "to"
    if business_number and phone_digits(msg.get("to")) == business_number:
        side = "from"
    party = identify(msg.get(side), msg.get(f"{side}_user_id"), msg.get(f"{side}_parent_user_id"), contacts)
    if party is None:
        return Unsupported("echo:no-recipient")
    return _message(msg, party, external_id, "outbound")

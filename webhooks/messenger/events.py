"""One Meta messaging event (``entry[].messaging[i]`` / ``standby[i]``) -> normalised events.

The same code reads Messenger and Instagram: only the platform name (Notice topics) and the
customer's identity kind (psid / igsid) differ. The customer is ``sender`` except on echoes,
where the page itself is the sender and the customer is ``recipient``.

Customers known only by a ``user_ref`` (chat plugin guests, checkbox plugin, the dashboard
"Test" button) have no PSID yet; the core cannot file them under any identity kind, so their
messages and postbacks are kept as Notices (subject None) instead of thread messages.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from gateway.providers import InboundMessage, Media, NormalisedEvent, Notice, StatusUpdate, Unsupported
from webhooks.messenger import attachments
from webhooks.messenger.timestamps import as_text, to_datetime

# Events that are neither messages nor statuses, kept as Notice("<platform>:<name>").
NOTICE_EVENTS = (
    "optin", "referral", "account_linking",
    "pass_thread_control", "take_thread_control", "request_thread_control", "app_roles",
    "policy-enforcement", "policy_enforcement", "messaging_feedback",
    "game_play", "checkout_update", "payment", "pre_checkout",
)
ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Where:
    """Where an event sits: which platform, which entry, which list."""
    platform: str                 # "messenger" / "instagram"
    identity_kind: str            # "psid" / "igsid"
    page_id: str | None = None    # entry.id; None for the dashboard test shape
    entry_time: Any = None
    standby: bool = False         # another app owns the conversation (handover protocol)


@dataclass(frozen=True)
class Facts:
    external_id: str | None
    customer: str | None
    timestamp: str | None
    occurred_at: datetime | None
    stamp: str                    # for synthetic ids: the event's time, else a digest of the event


def text_id(value: Any) -> str | None:
    """An id as text; Meta sends ids as strings, older payloads as numbers."""
    if value is None or value == "" or isinstance(value, (dict, list, bool)):
        return None
    return str(value)


def _id(party: Any) -> str | None:
    return text_id(party.get("id")) if isinstance(party, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def facts(event: dict, where: Where, *, echo: bool = False) -> Facts:
    sender, recipient = _id(event.get("sender")), _id(event.get("recipient"))
    timestamp = as_text(event.get("timestamp"))
    # Not entry.time: a retried delivery may carry a new one, and the id must not change.
    stamp = timestamp or hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Facts(
        external_id=where.page_id or (sender if echo else recipient),
        customer=recipient if echo else sender,
        timestamp=timestamp,
        occurred_at=to_datetime(event.get("timestamp")) or to_datetime(where.entry_time),
        stamp=stamp)


def _notice(name: str, event: dict, where: Where, f: Facts) -> Notice:
    detail = dict(event)
    if where.standby:
        detail["standby"] = True
    subject = (where.identity_kind, f.customer) if f.customer else None
    return Notice(external_id=f.external_id, topic=f"{where.platform}:{name}", detail=detail,
                  subject=subject, occurred_at=f.occurred_at)


def _unaddressed(name: str, event: dict, where: Where, f: Facts) -> NormalisedEvent | None:
    """What to return instead of a message when the customer or the channel is unknown."""
    if f.customer is None:
        if isinstance(event.get("sender"), dict) and event["sender"].get("user_ref"):
            return _notice(name, event, where, f)
        return Unsupported(f"{name}:no-sender")
    if f.external_id is None:
        return Unsupported(f"{name}:no-channel")
    return None


def _inbound(where: Where, f: Facts, **fields: Any) -> InboundMessage:
    return InboundMessage(external_id=f.external_id, sender=f.customer, sender_kind=where.identity_kind,
                          timestamp=f.timestamp, occurred_at=f.occurred_at, **fields)


def _content(obj: dict, event: dict, where: Where, *, drop: tuple[str, ...] = ()) -> dict:
    content = {k: v for k, v in obj.items() if k not in drop}
    if isinstance(event.get("referral"), dict):   # ads / m.me links that opened the thread with this message
        content.setdefault("referral", event["referral"])
    if where.standby:
        content["standby"] = True
    return content


def _classify(msg: dict) -> tuple[str, str, tuple[Media, ...]]:
    text = msg.get("text") if isinstance(msg.get("text"), str) else None
    raw_items = msg.get("attachments")
    items = [a for a in raw_items if isinstance(a, dict)] if isinstance(raw_items, list) else []
    quick = isinstance(msg.get("quick_reply"), dict)
    if items:
        kind = attachments.kind_of(items[0])
        if kind == "link" and text:   # a typed URL arrives as text plus a link-preview attachment
            kind = "quick_reply" if quick else "text"
        rendition = text or " ".join(attachments.render(item) for item in items)
        media = tuple(m for m in (attachments.media_of(item) for item in items) if m is not None)
        return kind, rendition, media
    if text is not None:
        return ("quick_reply" if quick else "text"), text, ()
    return "unsupported", "[unsupported message]", ()


def on_message(event: dict, where: Where) -> list[NormalisedEvent]:
    msg = event["message"]
    mid = _str(msg.get("mid"))
    if mid is None:
        return [Unsupported("message:no-mid")]
    echo = msg.get("is_echo") is True
    f = facts(event, where, echo=echo)
    if (problem := _unaddressed("message", event, where, f)) is not None:
        return [problem]
    if echo and _ours(msg.get("metadata")):
        # The echo of a message this gateway sent (we put our id in ``metadata``): it settles that message as
        # sent - also one whose send timed out - instead of being recorded a second time.
        return [StatusUpdate(external_id=f.external_id, provider_message_id=mid, status="sent",
                             timestamp=f.timestamp, occurred_at=f.occurred_at, callback_data=msg["metadata"],
                             recipient=f.customer, recipient_kind=where.identity_kind, detail={"echo": True})]
    reply = msg.get("reply_to")
    common = dict(content=_content(msg, event, where, drop=("mid", "seq")),
                  direction="outbound" if echo else "inbound")
    if msg.get("is_deleted") is True:
        # Its own id: the original mid is already taken by the message being deleted.
        return [_inbound(where, f, provider_message_id=f"{mid}:deleted", kind="revoke",
                         text="[message deleted]", reply_to=mid, **common)]
    if msg.get("is_unsupported") is True:
        return [_inbound(where, f, provider_message_id=mid, kind="unsupported",
                         text="[unsupported message]", **common)]
    kind, text, media = _classify(msg)
    return [_inbound(where, f, provider_message_id=mid, kind=kind, text=text, media=media,
                     reply_to=_str(reply.get("mid")) if isinstance(reply, dict) else None, **common)]


def _ours(metadata: Any) -> bool:
    """True when an echo's metadata is a message id of ours (a UUID), not some other app's metadata."""
    if not isinstance(metadata, str) or len(metadata) != 36:
        return False
    try:
        uuid.UUID(metadata)
    except ValueError:
        return False
    return True


def on_message_edit(event: dict, where: Where) -> list[NormalisedEvent]:
    edit = event["message_edit"]
    mid = _str(edit.get("mid"))
    if mid is None:
        return [Unsupported("message_edit:no-mid")]
    f = facts(event, where)
    if (problem := _unaddressed("message_edit", event, where, f)) is not None:
        return [problem]
    count = as_text(edit.get("num_edit")) or f.stamp
    text = edit.get("text") if isinstance(edit.get("text"), str) else "[edited]"
    return [_inbound(where, f, provider_message_id=f"{mid}:edit:{count}", kind="edit", text=text,
                     reply_to=mid, content=_content(edit, event, where))]


def on_postback(event: dict, where: Where) -> list[NormalisedEvent]:
    postback = event["postback"]
    f = facts(event, where)
    if (problem := _unaddressed("postback", event, where, f)) is not None:
        return [problem]
    # Older postbacks have no mid; the id must still be the same on every redelivery.
    message_id = _str(postback.get("mid")) or f"postback:{f.customer}:{f.stamp}"
    text = _str(postback.get("title")) or _str(postback.get("payload")) or "[postback]"
    return [_inbound(where, f, provider_message_id=message_id, kind="postback", text=text,
                     content=_content(postback, event, where))]


def on_reaction(event: dict, where: Where) -> list[NormalisedEvent]:
    reaction = event["reaction"]
    mid = _str(reaction.get("mid"))
    if mid is None:
        return [Unsupported("reaction:no-mid")]
    f = facts(event, where)
    if (problem := _unaddressed("reaction", event, where, f)) is not None:
        return [problem]
    action = _str(reaction.get("action")) or "react"
    if action == "unreact":
        text = "[reaction removed]"
    else:
        text = _str(reaction.get("emoji")) or _str(reaction.get("reaction")) or "[reaction]"
    return [_inbound(where, f, provider_message_id=f"reaction:{mid}:{f.customer}:{f.stamp}:{action}",
                     kind="reaction", text=text, reply_to=mid, content=_content(reaction, event, where))]


def _receipts(name: str, status: str, body: dict, event: dict, where: Where) -> list[NormalisedEvent]:
    """delivery / read: one status per named mid, plus one for the watermark ("everything up to")."""
    f = facts(event, where)
    if f.external_id is None:
        return [Unsupported(f"{name}:no-channel")]
    recipient_kind = where.identity_kind if f.customer else None
    common = dict(external_id=f.external_id, status=status, timestamp=f.timestamp, occurred_at=f.occurred_at,
                  recipient=f.customer, recipient_kind=recipient_kind)
    mids = body.get("mids")
    named = [m for m in mids if _str(m)] if isinstance(mids, list) else []
    if _str(body.get("mid")):
        named.append(body["mid"])
    out: list[NormalisedEvent] = [StatusUpdate(provider_message_id=mid, **common) for mid in named]
    watermark = to_datetime(body.get("watermark"))
    if watermark is not None:
        out.append(StatusUpdate(provider_message_id=None, watermark=watermark,
                                detail={"watermark": as_text(body.get("watermark"))}, **common))
    return out or [Unsupported(f"{name}:empty")]


def on_delivery(event: dict, where: Where) -> list[NormalisedEvent]:
    return _receipts("delivery", "delivered", event["delivery"], event, where)


def on_read(event: dict, where: Where) -> list[NormalisedEvent]:
    return _receipts("read", "read", event["read"], event, where)


HANDLERS: dict[str, Callable[[dict, Where], list[NormalisedEvent]]] = {
    "message": on_message,
    "message_edit": on_message_edit,
    "postback": on_postback,
    "reaction": on_reaction,
    "delivery": on_delivery,
    "read": on_read,
}


def event_name(event: dict) -> str | None:
    for name in (*HANDLERS, *NOTICE_EVENTS):
        if name in event:
            return name
    for key in event:
        if key not in ENVELOPE_KEYS:
            return key
    return None


def parse_event(event: Any, where: Where) -> list[NormalisedEvent]:
    """Never raises: an event it cannot read comes back as Unsupported."""
    if not isinstance(event, dict):
        return [Unsupported("event:malformed")]
    name = event_name(event)
    if name is None:
        return [Unsupported("event:empty")]
    try:
        handler = HANDLERS.get(name)
        if handler is not None:
            return handler(event, where)
        if name in NOTICE_EVENTS:
            return [_notice(name, event, where, facts(event, where))]
        return [Unsupported(f"event:{name}")]
    except Exception:   # one odd event must not lose its neighbours
        log.warning("%s: could not read one %s event", where.platform, name, exc_info=True)
        return [Unsupported(f"{name}:malformed")]

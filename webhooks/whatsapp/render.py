"""One line of text per message type: what a person sees in the thread history.

Every renderer returns a non-empty string, also for odd shapes, because the core
stores the rendition as the message body and an empty body hides that something came.
"""
from __future__ import annotations

from typing import Any, Callable

MEDIA_TYPES = ("image", "video", "document", "audio", "sticker")
UNSUPPORTED = "[unsupported message]"


def _obj(msg: dict, key: str) -> dict:
    value = msg.get(key)
    return value if isinstance(value, dict) else {}


def _media(kind: str) -> Callable[[dict], str]:
    def render(msg: dict) -> str:
        media = _obj(msg, kind)
        if media.get("caption"):
            return str(media["caption"])
        if kind == "document" and media.get("filename"):
            return str(media["filename"])
        if kind == "audio" and media.get("voice") is True:
            return "[voice message]"
        return f"[{kind}]"
    return render


def _text(msg: dict) -> str:
    return str(_obj(msg, "text").get("body") or "") or "[empty text]"


def _location(msg: dict) -> str:
    loc = _obj(msg, "location")
    named = ", ".join(str(p) for p in (loc.get("name"), loc.get("address")) if p)
    if named:
        return named
    return f"{loc.get('latitude')},{loc.get('longitude')}"


def _contact_name(card: dict) -> str:
    name = _obj(card, "name")
    if name.get("formatted_name"):
        return str(name["formatted_name"])
    parts = [str(name[k]) for k in ("first_name", "middle_name", "last_name") if name.get(k)]
    return " ".join(parts) or "?"


def _contacts(msg: dict) -> str:
    cards = msg.get("contacts")
    names = [_contact_name(c) for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
    return ", ".join(names) if names else "[contacts]"


def _interactive(msg: dict) -> str:
    inter = msg.get("interactive")
    if not isinstance(inter, dict):
        return UNSUPPORTED   # type=interactive without the object: Meta flags it in value.errors (131000)
    sub = inter.get("type")
    reply = _obj(inter, sub) if isinstance(sub, str) else {}
    if sub in ("button_reply", "list_reply"):
        return str(reply.get("title") or reply.get("id") or f"[{sub}]")
    if sub == "nfm_reply":
        return "[form reply]"
    if sub == "call_permission_reply":
        return f"[call permission: {reply.get('response') or '?'}]"
    return "[interactive]"


def _button(msg: dict) -> str:
    button = _obj(msg, "button")
    return str(button.get("text") or button.get("payload") or "[button]")


def _reaction(msg: dict) -> str:
    return str(_obj(msg, "reaction").get("emoji") or "") or "[reaction removed]"


def _order(msg: dict) -> str:
    order = _obj(msg, "order")
    items = order.get("product_items")
    count = len(items) if isinstance(items, list) else 0
    note = order.get("text")
    return f"[order: {count} items]" + (f" {note}" if note else "")


def _system(msg: dict) -> str:
    return str(_obj(msg, "system").get("body") or "") or "[system]"


def _edit(msg: dict) -> str:
    return "[edited] " + render(_obj(_obj(msg, "edit"), "message"))


def _unsupported(msg: dict) -> str:
    what = _obj(msg, "unsupported").get("type")
    return f"[unsupported message: {what}]" if what else UNSUPPORTED


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


def render(msg: Any) -> str:
    if not isinstance(msg, dict):
        return UNSUPPORTED
    kind = msg.get("type")
    renderer = RENDERERS.get(kind) if isinstance(kind, str) else None
    return (renderer or _unsupported)(msg)

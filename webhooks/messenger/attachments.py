"""``message.attachments[]`` items -> message kind, thread rendition and downloadable Media.

Only what the customer uploaded becomes ``Media`` (a worker downloads it later). Shared
posts, reels and story mentions point at someone's published content; they stay as URLs in
``content`` - and Meta forbids storing story-mention media at all.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from gateway.providers import Media

# Attachment type -> message kind. Types Meta adds later fall back to "attachment".
KINDS = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "file",
    "location": "location",
    "fallback": "link",
    "template": "template",
    "share": "share",
    "story_mention": "story_mention",
    "reel": "reel",
    "ig_reel": "reel",
    "ig_post": "post",
}
DOWNLOADABLE = frozenset({"image", "video", "audio", "file", "sticker", "attachment"})


def _payload(item: dict) -> dict:
    payload = item.get("payload")
    return payload if isinstance(payload, dict) else {}


def kind_of(item: dict) -> str:
    payload = _payload(item)
    if item.get("type") == "image" and payload.get("sticker_id") is not None:
        return "sticker"   # Messenger sends stickers (and the thumbs-up "like") as images
    return KINDS.get(item.get("type"), "attachment")


def _first_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return None


def _location(item: dict) -> str:
    coords = _payload(item).get("coordinates")
    if isinstance(coords, dict) and coords.get("lat") is not None and coords.get("long") is not None:
        point = f"{coords['lat']},{coords['long']}"
        return f"{item['title']} ({point})" if _first_text(item.get("title")) else point
    return _first_text(item.get("title")) or "[location]"


def _template(item: dict) -> str:
    payload = _payload(item)
    elements = payload.get("elements")
    first = elements[0] if isinstance(elements, list) and elements and isinstance(elements[0], dict) else {}
    return _first_text(item.get("title"), payload.get("text"), first.get("title")) or "[template]"


PLACEHOLDERS = {
    "share": "[shared post]",
    "story_mention": "[story mention]",
    "reel": "[reel]",
    "post": "[post]",
    "attachment": "[attachment]",
}


def render(item: dict) -> str:
    kind = kind_of(item)
    payload = _payload(item)
    if kind == "location":
        return _location(item)
    if kind == "template":
        return _template(item)
    if kind == "link":
        return _first_text(item.get("title"), item.get("url"), payload.get("url")) or "[link]"
    if kind in PLACEHOLDERS:
        return _first_text(payload.get("title"), item.get("title")) or PLACEHOLDERS[kind]
    return f"[{kind}]"


def _filename(url: str) -> str | None:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    return name if name and "." in name else None


def media_of(item: dict) -> Media | None:
    kind = kind_of(item)
    url = _payload(item).get("url")
    if kind not in DOWNLOADABLE or not isinstance(url, str) or not url:
        return None
    media_kind = "file" if kind == "attachment" else kind
    return Media(kind=media_kind, url=url, filename=_filename(url) if media_kind == "file" else None)

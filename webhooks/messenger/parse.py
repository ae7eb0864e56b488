"""Meta messaging webhook bodies (Messenger ``object=page``, Instagram ``object=instagram``) -> events.

Shapes read (protocols.md C1):

* the live envelope ``{"object", "entry": [{"id", "time", "messaging"|"standby"|"changes": [...]}]}``;
  every entry and every item of ``messaging[]`` and ``standby[]`` is visited;
* ``changes[]`` (Instagram comments/mentions, Page feed) -> ``Notice("<platform>:<field>")``;
* the dashboard "Test" button's ``{"field", "value"}``: ``value`` is one messaging event when it
  has a sender or recipient, otherwise a change.

``Unsupported.what`` values from this module: ``invalid-json``, ``envelope``, ``object:<x>``,
``entry``, ``entry:empty``, ``messaging:malformed``, ``standby:malformed``, ``change:malformed``;
events.py adds ``event:<name>``, ``<event>:malformed``, ``<event>:no-sender`` and the like.
"""
from __future__ import annotations

import json
from typing import Any

from gateway.providers import BadRequest, NormalisedEvent, Notice, Unsupported
from webhooks.messenger.events import Where, parse_event, text_id
from webhooks.messenger.timestamps import to_datetime

EVENT_LISTS = (("messaging", False), ("standby", True))


def _change(change: Any, where: Where) -> NormalisedEvent:
    if not isinstance(change, dict) or not isinstance(change.get("field"), str):
        return Unsupported("change:malformed")
    value = change.get("value")
    return Notice(external_id=where.page_id, topic=f"{where.platform}:{change['field']}",
                  detail=value if isinstance(value, dict) else {"value": value},
                  occurred_at=to_datetime(where.entry_time))


def _test_shape(body: dict, platform: str, identity_kind: str) -> list[NormalisedEvent]:
    value = body.get("value")
    if isinstance(value, dict) and ("sender" in value or "recipient" in value):
        return parse_event(value, Where(platform, identity_kind, standby=body.get("field") == "standby"))
    return [_change(body, Where(platform, identity_kind))]


def _entry(entry: Any, platform: str, identity_kind: str) -> list[NormalisedEvent]:
    if not isinstance(entry, dict):
        return [Unsupported("entry")]
    page_id, time = text_id(entry.get("id")), entry.get("time")
    events: list[NormalisedEvent] = []
    seen_any = False
    for key, standby in EVENT_LISTS:
        if key not in entry:
            continue
        seen_any = True
        items = entry[key]
        if not isinstance(items, list):
            events.append(Unsupported(f"{key}:malformed"))
            continue
        where = Where(platform, identity_kind, page_id=page_id, entry_time=time, standby=standby)
        for item in items:
            events.extend(parse_event(item, where))
    if "changes" in entry:
        seen_any = True
        changes = entry["changes"]
        where = Where(platform, identity_kind, page_id=page_id, entry_time=time)
        for change in changes if isinstance(changes, list) else [None]:
            events.append(_change(change, where))
    return events if seen_any else [Unsupported("entry:empty")]


def parse_body(raw: bytes, *, platform: str, object_name: str, identity_kind: str) -> list[NormalisedEvent]:
    """Every event in the body, in order; never raises."""
    try:
        body = json.loads(raw)
    except Exception:   # ValueError, UnicodeDecodeError, RecursionError on absurd nesting
        return [Unsupported("invalid-json")]
    if not isinstance(body, dict):
        return [Unsupported("envelope")]
    if "object" not in body and "field" in body and "value" in body:
        return _test_shape(body, platform, identity_kind)
    if body.get("object") != object_name:
        return [Unsupported(f"object:{body.get('object')}")]
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        return [Unsupported("envelope")]
    events: list[NormalisedEvent] = []
    for entry in entries:
        events.extend(_entry(entry, platform, identity_kind))
    return events


def _event_channel(event: Any) -> str | None:
    """The page side of one event: the recipient, or the sender of an echo."""
    if not isinstance(event, dict):
        return None
    message = event.get("message")
    echo = isinstance(message, dict) and message.get("is_echo") is True
    party = event.get("sender") if echo else event.get("recipient")
    return text_id(party.get("id")) if isinstance(party, dict) else None


def channel_ids(raw: bytes) -> list[str]:
    """The Page / IG account ids this body is addressed to, best first: entry ids, then event ids.

    Raises BadRequest only when the body is not a JSON object at all."""
    try:
        body = json.loads(raw)
    except Exception:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body is not a JSON object")
    found: list[str] = []

    def add(value: str | None) -> None:
        if value and value not in found:
            found.append(value)

    try:
        if "object" not in body and isinstance(body.get("value"), dict):
            add(_event_channel(body["value"]))
            return found
        entries = body.get("entry") if isinstance(body.get("entry"), list) else []
        entries = [e for e in entries if isinstance(e, dict)]
        for entry in entries:
            add(text_id(entry.get("id")))
        for entry in entries:
            for key, _ in EVENT_LISTS:
                items = entry.get(key)
                for event in items if isinstance(items, list) else []:
                    add(_event_channel(event))
    except Exception:   # routing must answer with what it has, never fail the request
        pass
    return found

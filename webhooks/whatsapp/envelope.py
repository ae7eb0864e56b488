"""The outer shape of a Cloud API webhook: ``{"object", "entry": [{"id", "changes": [{"field", "value"}]}]}``.

Routing reads only this envelope, so it runs before the signature check and must
never trust or fail on what is inside a change.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.providers import BadRequest
from webhooks.whatsapp.values import text


def decode(raw: bytes) -> dict:
    """The JSON object in the body; BadRequest for anything Meta never sends (not JSON, not an object)."""
    try:
        body = json.loads(raw)
    except (ValueError, TypeError, RecursionError) as exc:   # UnicodeDecodeError is a ValueError
        raise BadRequest("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body is JSON but not an object")
    return body


@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item with what it inherits from its entry."""
    field: Any
    value: Any
    waba_id: str | None
    entry_time: Any = None

    @property
    def phone_number_id(self) -> str | None:
        meta = self.value.get("metadata") if isinstance(self.value, dict) else None
        return text(meta.get("phone_number_id")) if isinstance(meta, dict) else None

    @property
    def external_id(self) -> str | None:
        """The phone number the change concerns; account-level changes only name the WABA."""
        return self.phone_number_id or self.waba_id


def channel_ids(raw: bytes) -> list[str]:
    """Distinct phone_number_ids in order, then the WABA ids (a channel may be registered by either)."""
    body = decode(raw)
    phone_ids: list[str] = []
    waba_ids: list[str] = []
    entries = body.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        waba = text(entry.get("id"))
        if waba and waba not in waba_ids:
            waba_ids.append(waba)
        changes = entry.get("changes")
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict):
                continue
            pid = Change(change.get("field"), change.get("value"), waba).phone_number_id
            if pid and pid not in phone_ids:
                phone_ids.append(pid)
    return phone_ids + [w for w in waba_ids if w not in phone_ids]

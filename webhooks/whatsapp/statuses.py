"""Status objects (``value.statuses[]`` of field ``messages``) -> StatusUpdate, or a Notice for words the core
does not rank (``deleted``, ``warning``, anything new)."""
from __future__ import annotations

from typing import Any

from gateway.providers import NormalisedEvent, Notice, StatusUpdate, Unsupported
from webhooks.whatsapp.identity import Party, identify
from webhooks.whatsapp.values import dict_list, text, utc_from_seconds

STATUSES = frozenset({"sent", "delivered", "read", "played", "failed"})


def error_reason(error: dict) -> str | None:
    """Meta's title plus its details; codes are what logic should use, this is for people."""
    title = text(error.get("title")) or text(error.get("message"))
    data = error.get("error_data")
    details = text(data.get("details")) if isinstance(data, dict) else None
    parts = [p for p in (title, details) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return ": ".join(parts) or None


def recipient(st: dict, contacts: list[dict]) -> Party | None:
    if st.get("recipient_type") == "group":   # recipient_id is the group; the participant is the person
        return identify(st.get("recipient_participant_id"), st.get("recipient_participant_user_id"),
                        st.get("recipient_participant_parent_user_id"), contacts)
    return identify(st.get("recipient_id"), st.get("recipient_user_id"), st.get("recipient_parent_user_id"),
                    contacts)


def detail_of(st: dict, word: str, party: Party | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"status": word}
    for key in ("conversation", "pricing", "errors", "recipient_type"):
        if key in st:
            detail[key] = st[key]
    if st.get("recipient_type") == "group":
        detail["group_id"] = text(st.get("recipient_id"))
    if party is not None:
        detail.update({f"recipient_{key}": value for key, value in party.ids.items()})
    return detail


def status(st: dict, external_id: str, contacts: list[dict]) -> NormalisedEvent:
    word = text(st.get("status"))
    if word is None:
        return Unsupported("status:no-status")
    party = recipient(st, contacts)
    timestamp = text(st.get("timestamp"))
    occurred_at = utc_from_seconds(timestamp)
    if word not in STATUSES:
        subject = (party.kind, party.address) if party else None
        return Notice(external_id=external_id, topic=f"status:{word}", detail=dict(st), subject=subject,
                      occurred_at=occurred_at)
    message_id = text(st.get("id"))
    if message_id is None:
        return Unsupported("status:no-id")
    error_code = reason = None
    errors = dict_list(st.get("errors"))
    if word == "failed" and errors:
        error_code = text(errors[0].get("code"))
        reason = error_reason(errors[0])
    return StatusUpdate(
        external_id=external_id, provider_message_id=message_id, status=word,  # type: ignore[arg-type]
        timestamp=timestamp, occurred_at=occurred_at, error_code=error_code, error_reason=reason,
        callback_data=text(st.get("biz_opaque_callback_data")),
        recipient=party.address if party else None, recipient_kind=party.kind if party else None,
        detail=detail_of(st, word, party))

"""Webhook fields that are not conversation traffic -> Notice, for the core to route to whoever owns the topic."""
from __future__ import annotations

from datetime import datetime

from gateway.providers import NormalisedEvent, Notice
from webhooks.whatsapp.envelope import Change
from webhooks.whatsapp.identity import Party, identify
from webhooks.whatsapp.isolate import each
from webhooks.whatsapp.values import dict_list, utc_from_seconds

# Webhook field -> Notice topic. The topic names are the core's vocabulary, not Meta's.
TOPICS = {
    "message_template_status_update": "template_status",
    "message_template_quality_update": "template_quality",
    "template_category_update": "template_category",
    "message_template_components_update": "template_components",
    "account_update": "account_update",
    "phone_number_quality_update": "phone_quality",
    "phone_number_name_update": "phone_name",
    "business_capability_update": "business_capability",
    "security": "security",
    "flows": "flows",
    "calls": "calls",
    "account_alerts": "account_alerts",
    "account_review_update": "account_review_update",
    "history": "history",
    "smb_app_state_sync": "smb_app_state_sync",
}


def _subject(party: Party | None) -> tuple[str, str] | None:
    return (party.kind, party.address) if party else None


def _when(change: Change) -> datetime | None:
    """value.timestamp, else the entry's time, else the first item's (calls carry it per call)."""
    value = change.value
    for candidate in (value.get("timestamp"), change.entry_time):
        if candidate is not None:
            return utc_from_seconds(candidate)
    for items in value.values():
        first = dict_list(items)[:1]
        if first and first[0].get("timestamp") is not None:
            return utc_from_seconds(first[0]["timestamp"])
    return None


def field_notice(change: Change) -> list[NormalisedEvent]:
    """One Notice carrying the whole value; the customer it concerns when the value names exactly one."""
    value = change.value
    contacts = dict_list(value.get("contacts"))
    party = None
    if len(contacts) == 1:
        card = contacts[0]
        party = identify(card.get("wa_id"), card.get("user_id"), card.get("parent_user_id"), contacts)
    return [Notice(external_id=change.external_id, topic=TOPICS[change.field], detail=dict(value),
                   subject=_subject(party), occurred_at=_when(change))]


def user_preferences(change: Change) -> list[NormalisedEvent]:
    """One Notice per preference (a marketing stop or resume is per user, and consent is kept per user)."""
    contacts = dict_list(change.value.get("contacts"))

    def one(item: dict) -> Notice:
        party = identify(item.get("wa_id"), item.get("user_id"), item.get("parent_user_id"), contacts)
        return Notice(external_id=change.external_id, topic="user_preferences", detail=dict(item),
                      subject=_subject(party), occurred_at=utc_from_seconds(item.get("timestamp")))

    return each(change.value.get("user_preferences"), one, "user_preferences")

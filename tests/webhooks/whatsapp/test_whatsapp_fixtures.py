"""Every shared WhatsApp fixture, parsed: which events it becomes, and what holds for all of them."""
from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import pytest

from gateway.providers import IdentityChange, InboundMessage, Notice, StatusUpdate, Unsupported
from webhooks.whatsapp import PROVIDER

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "whatsapp"
if not FIXTURES.is_dir():
    pytest.skip(f"shared WhatsApp fixtures not found at {FIXTURES}", allow_module_level=True)
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))

ACCOUNT_UPDATES = ("account_deleted", "account_disabled", "account_offboarded", "account_reconnected",
                   "account_restriction", "account_violation", "ad_account_linked",
                   "authentication_international_eligibility", "mm_api_for_wa_terms_of_service", "partner_added",
                   "partner_app_installed", "partner_app_uninstalled", "partner_led_business_verification_status",
                   "partner_removed", "partner_removed_wa_app_disconnection", "pricing_tiering_update",
                   "primary_business_location_set")

# fixture stem (without "pywa_") -> the events it must become, in order.
EXPECTED: dict[str, list[str]] = {
    **{f"account_update__{name}": ["notice:account_update"] for name in ACCOUNT_UPDATES},
    "call_connect__business_initiated": ["notice:calls"],
    "call_connect__user_initiated": ["notice:calls"],
    "call_status__call_status": ["notice:calls"],
    # value-level errors[] are flagged wherever they appear (here: placeholder values from the docs)
    "call_terminate__call_terminate": ["notice:calls", "unsupported:errors"],
    "call_permission_update__accept": ["in:interactive"],
    "call_permission_update__reject": ["in:interactive"],
    "callback_button__button": ["in:interactive"],
    "callback_button__quick_reply": ["in:button"],
    "callback_button__quick_reply_without_context": ["in:button"],
    "callback_selection__callback": ["in:interactive"],
    "callback_selection__description": ["in:interactive"],
    "deleted_message__revoke": ["in:revoke"],
    "edited_message__image": ["in:edit"],
    "flow_completion__completion": ["in:interactive"],
    "flow_completion__without_flow_token": ["in:interactive"],
    "message__animated_sticker": ["in:sticker"],
    "message__static_sticker": ["in:sticker"],
    "message__audio": ["in:audio"],
    "message__voice": ["in:audio"],
    "message__chosen_location": ["in:location"],
    "message__current_location": ["in:location"],
    "message__contacts": ["in:contacts"],
    "message__document": ["in:document"],
    "message__forwarded": ["in:text"],
    "message__forwarded_many_times": ["in:text"],
    "message__image": ["in:image"],
    "message__media_with_url": ["in:image"],
    # a genuinely unreadable message: Meta itself says so in value.errors (131000)
    "message__interactive_message_with_err": ["in:interactive", "unsupported:errors"],
    "message__order": ["in:order"],
    "message__reaction": ["in:reaction"],
    "message__unreaction_empty": ["in:reaction"],
    "message__unreaction_no_emoji": ["in:reaction"],
    "message__referral": ["in:text"],
    "message__reply": ["in:text"],
    "message__text": ["in:text"],
    "message__unsupported": ["in:unsupported"],
    "message__unsupported_with_type": ["in:unsupported"],
    "message__video": ["in:video"],
    "message_status__sent": ["status:sent"],
    "message_status__delivered": ["status:delivered"],
    "message_status__read": ["status:read"],
    "message_status__played": ["status:played"],
    "message_status__failed": ["status:failed"],
    "message_status__with_tracker": ["status:sent"],
    "message_status__group": ["status:read"],
    "outgoing_message__text": ["out:text"],
    "outgoing_message__edit": ["out:edit"],
    "outgoing_message__delete": ["out:revoke"],
    "system__identity_change": ["in:system"],
    "system__phone_number_change": ["in:system", "identity:phone"],
    "template_category_update__marketing": ["notice:template_category"],
    "template_components_update__element": ["notice:template_components"],
    "template_quality_update__yellow": ["notice:template_quality"],
    "template_status_update__approved": ["notice:template_status"],
    "template_status_update__rejected": ["notice:template_status"],
    "user_marketing_preferences__resume": ["notice:user_preferences"],
    "user_marketing_preferences__signup": ["notice:user_preferences"],
}


def signature(event) -> str:
    if isinstance(event, InboundMessage):
        return f"{'in' if event.direction == 'inbound' else 'out'}:{event.kind}"
    if isinstance(event, StatusUpdate):
        return f"status:{event.status}"
    if isinstance(event, Notice):
        return f"notice:{event.topic}"
    if isinstance(event, IdentityChange):
        return f"identity:{event.kind}"
    assert isinstance(event, Unsupported), event
    return f"unsupported:{event.what}"


def stem(path: Path) -> str:
    return path.stem.removeprefix("pywa_")


def test_every_fixture_has_an_expectation_and_every_expectation_a_fixture():
    assert FIXTURE_FILES, f"no *.json in {FIXTURES}"
    assert {stem(p) for p in FIXTURE_FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=stem)
def test_fixture_becomes_the_expected_events(path: Path):
    raw = path.read_bytes()
    events = PROVIDER.parse(raw, {})
    assert [signature(e) for e in events] == EXPECTED.get(stem(path)), events


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=stem)
def test_fixture_invariants(path: Path):
    raw = path.read_bytes()
    body = json.loads(raw)
    events = PROVIDER.parse(raw, {})
    routes = PROVIDER.channel_ids(raw, {}, "https://gw.example/webhooks/whatsapp")
    assert routes, "a well-formed body always names a channel"

    items = []
    for entry in body["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            if change["field"] == "messages":
                items += value.get("messages", []) + value.get("statuses", [])
            elif change["field"] == "smb_message_echoes":
                items += value.get("message_echoes", [])
    item_ids = {item["id"] for item in items}
    carried = [e for e in events if isinstance(e, (InboundMessage, StatusUpdate))]
    assert len(carried) == len(items), "every message, status and echo is represented exactly once"

    for event in events:
        if isinstance(event, (InboundMessage, StatusUpdate, IdentityChange, Notice)):
            assert event.external_id in routes   # the core can match the event to the routed channel
        if isinstance(event, InboundMessage):
            assert event.provider_message_id in item_ids
            assert event.sender_kind in ("phone", "bsuid")
            if event.sender_kind == "phone":
                assert event.sender.startswith("+") and event.sender[1:].isdigit()
            assert isinstance(event.text, str) and event.text
            assert isinstance(event.timestamp, str)
            assert event.occurred_at.tzinfo == timezone.utc
            assert int(event.occurred_at.timestamp()) == int(event.timestamp)
            assert isinstance(event.content, dict) and event.content
        if isinstance(event, StatusUpdate):
            assert event.provider_message_id in item_ids
            assert event.detail["status"] == event.status
            assert int(event.occurred_at.timestamp()) == int(event.timestamp)
        if isinstance(event, Notice):
            assert isinstance(event.detail, dict) and event.detail


def test_only_meta_flagged_errors_are_unsupported_across_the_corpus():
    flagged = {stem(p): [e.what for e in PROVIDER.parse(p.read_bytes(), {}) if isinstance(e, Unsupported)]
               for p in FIXTURE_FILES}
    assert {name: whats for name, whats in flagged.items() if whats} == {
        "call_terminate__call_terminate": ["errors"],
        "message__interactive_message_with_err": ["errors"],
    }

"""Every shared Instagram fixture (real captures) -> the events it must become. Pure; no database."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from gateway.providers import InboundMessage, Media, Notice, StatusUpdate, Unsupported
from webhooks.instagram import PROVIDER

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "instagram"
if not FIXTURES.is_dir():
    pytest.skip(f"shared Instagram fixtures not found at {FIXTURES}", allow_module_level=True)

URL = "https://gw.example/webhooks/instagram"
IG_ACCOUNT = "17841472110558136"
IGSID = "489760440872775"

TABLE = {
    "captured_ig_text_message.json": [("inbound", "text")],
    "captured_ig_image_message.json": [("inbound", "image")],
    "captured_ig_mentions_change.json": [("notice", "instagram:mentions")],
    "captured_ig_read_seen.json": [("status", "read", "mid")],
}


def summary(ev) -> tuple:
    if isinstance(ev, InboundMessage):
        return (ev.direction, ev.kind)
    if isinstance(ev, StatusUpdate):
        return ("status", ev.status, "mid" if ev.provider_message_id else "watermark")
    if isinstance(ev, Notice):
        return ("notice", ev.topic)
    return ("unsupported", ev.what)


def parse(name: str):
    return PROVIDER.parse((FIXTURES / name).read_bytes(), {})


def test_every_fixture_is_in_the_table():
    assert {p.name for p in FIXTURES.glob("*.json")} == set(TABLE), "a fixture was added or removed: update TABLE"


@pytest.mark.parametrize("name", sorted(TABLE), ids=lambda n: n.removesuffix(".json"))
def test_fixture_becomes_the_expected_events(name):
    raw = (FIXTURES / name).read_bytes()
    assert [summary(e) for e in parse(name)] == TABLE[name]
    assert PROVIDER.channel_ids(raw, {}, URL), "routing found no channel"


def test_text_capture():
    [ev] = parse("captured_ig_text_message.json")
    assert (ev.external_id, ev.sender, ev.sender_kind, ev.text) == (IG_ACCOUNT, IGSID, "igsid", "Omg")
    assert ev.provider_message_id.startswith("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj")
    assert ev.timestamp == "1740157200421"
    assert ev.occurred_at == datetime(2025, 2, 21, 17, 0, 0, 421000, tzinfo=timezone.utc)


def test_image_capture_has_the_cdn_url_as_media():
    [ev] = parse("captured_ig_image_message.json")
    assert (ev.kind, ev.text) == ("image", "[image]")
    [media] = ev.media
    assert isinstance(media, Media) and media.kind == "image"
    assert media.url.startswith("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1151970572602487")


def test_mentions_change_is_a_notice_of_the_test_account():
    raw = (FIXTURES / "captured_ig_mentions_change.json").read_bytes()
    [ev] = PROVIDER.parse(raw, {})
    assert ev.detail == {"media_id": "17887498072083520", "comment_id": "17887498072083520"}
    # entry.time is in seconds here, and entry.id is "0" (the dashboard test account)
    assert ev.occurred_at == datetime(2025, 2, 21, 16, 52, 54, tzinfo=timezone.utc)
    assert ev.external_id == "0" and PROVIDER.channel_ids(raw, {}, URL) == ["0"]


def test_seen_capture_without_sender_or_recipient():
    [ev] = parse("captured_ig_read_seen.json")
    assert (ev.external_id, ev.status, ev.recipient, ev.recipient_kind) == \
        ("17841421930215757", "read", None, None)
    assert ev.provider_message_id.endswith("NgZDZD") and ev.watermark is None


def test_captures_are_not_messenger_bodies():
    from webhooks.messenger import PROVIDER as MESSENGER
    assert MESSENGER.parse((FIXTURES / "captured_ig_text_message.json").read_bytes(), {}) == \
        [Unsupported("object:instagram")]

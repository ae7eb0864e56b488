"""Instagram DM events on the shared Meta parser: IG-only attachments, echoes, seen, changes. Pure."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from gateway.providers import BadRequest, InboundMessage, Notice, OutboundMessage, SendResult, StatusUpdate, Unsupported
from webhooks.instagram import PROVIDER, InstagramProvider
from webhooks.messenger import MessengerProvider

IG = "17841400000000001"
IGSID = "900000000000001"
T = 1740157200421
WHEN = datetime(2025, 2, 21, 17, 0, 0, 421000, tzinfo=timezone.utc)
SECRET = "instagram-app-secret"


def event(**fields) -> dict:
    base = {"sender": {"id": IGSID}, "recipient": {"id": IG}, "timestamp": T}
    base.update(fields)
    return base


def body(*events, standby=()) -> dict:
    entry = {"id": IG, "time": T + 300, "messaging": list(events)}
    if standby:
        entry["standby"] = list(standby)
    return {"object": "instagram", "entry": [entry]}


def raw_of(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def parse(value):
    return PROVIDER.parse(raw_of(value), {})


def one(value):
    events = parse(value)
    assert len(events) == 1, events
    return events[0]


def attachment(kind: str, **payload) -> InboundMessage:
    ev = one(body(event(message={"mid": "aWdf_1", "attachments": [{"type": kind, "payload": payload}]})))
    assert isinstance(ev, InboundMessage), ev
    return ev


def test_provider_attributes():
    assert isinstance(PROVIDER, InstagramProvider) and isinstance(PROVIDER, MessengerProvider)
    assert PROVIDER.name == "instagram"
    assert PROVIDER.required_credentials == ("app_secret", "page_access_token", "verify_token")
    assert PROVIDER.optional_credentials == () and PROVIDER.ack == ("", "text/plain")
    message = OutboundMessage(id="m1", to="IGSID1", to_kind="igsid", kind="text", content={"body": "hi"})
    assert PROVIDER.send(message, {"external_id": "1784", "settings": {}}, {}) == SendResult(
        "failed", error_code="config", channel_problem=True, reason="the Instagram channel has no page_access_token")


def test_text_message_is_from_an_igsid():
    ev = one(body(event(message={"mid": "aWdf_1", "text": "¿Tienen talla M? 🙏"})))
    assert ev == InboundMessage(
        external_id=IG, sender=IGSID, sender_kind="igsid", provider_message_id="aWdf_1", kind="text",
        text="¿Tienen talla M? 🙏", timestamp=str(T), occurred_at=WHEN, content={"text": "¿Tienen talla M? 🙏"})


@pytest.mark.parametrize("kind", ["image", "video", "audio"])
def test_uploaded_media(kind):
    ev = attachment(kind, url=f"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&{kind}")
    assert ev.kind == kind and ev.media[0].kind == kind


@pytest.mark.parametrize("kind, expected_kind, payload, text", [
    ("story_mention", "story_mention", {"url": "https://lookaside.fbsbx.com/story"}, "[story mention]"),
    ("share", "share", {"url": "https://lookaside.fbsbx.com/post"}, "[shared post]"),
    ("ig_reel", "reel", {"url": "https://x/reel.mp4", "title": "My reel", "reel_video_id": "1"}, "My reel"),
    ("reel", "reel", {"url": "https://x/reel.mp4", "reel_video_id": "1"}, "[reel]"),
    ("ig_post", "post", {"url": "https://x/p.jpg", "title": "Launch day", "ig_post_media_id": "2"}, "Launch day"),
])
def test_references_to_published_content_are_not_downloaded(kind, expected_kind, payload, text):
    ev = attachment(kind, **payload)
    assert (ev.kind, ev.text, ev.media) == (expected_kind, text, ())
    assert ev.content["attachments"][0]["payload"]["url"] == payload["url"]


def test_story_reply_keeps_the_story_in_content():
    story = {"id": "1789", "url": "https://lookaside.fbsbx.com/story/1789"}
    ev = one(body(event(message={"mid": "aWdf_2", "text": "love this", "reply_to": {"story": story}})))
    assert (ev.kind, ev.text, ev.reply_to) == ("text", "love this", None)
    assert ev.content["reply_to"] == {"story": story}


def test_reply_to_a_message():
    ev = one(body(event(message={"mid": "aWdf_3", "text": "this one", "reply_to": {"mid": "aWdf_1"}})))
    assert ev.reply_to == "aWdf_1"


def test_deleted_and_unsupported():
    deleted = one(body(event(message={"mid": "aWdf_1", "is_deleted": True})))
    assert (deleted.kind, deleted.reply_to, deleted.provider_message_id) == ("revoke", "aWdf_1", "aWdf_1:deleted")
    unsupported = one(body(event(message={"mid": "aWdf_4", "is_unsupported": True})))
    assert unsupported.kind == "unsupported" and unsupported.sender == IGSID


def test_echo_comes_through_messages_and_is_outbound():
    ev = one(body({"sender": {"id": IG}, "recipient": {"id": IGSID}, "timestamp": T,
                   "message": {"mid": "aWdf_echo", "text": "Sí, la tenemos", "is_echo": True}}))
    assert (ev.direction, ev.sender, ev.sender_kind, ev.external_id) == ("outbound", IGSID, "igsid", IG)


def test_reaction_and_unreact():
    react = one(body(event(reaction={"mid": "aWdf_1", "action": "react", "reaction": "love", "emoji": "❤"})))
    assert (react.kind, react.text, react.reply_to, react.sender_kind) == ("reaction", "❤", "aWdf_1", "igsid")
    unreact = one(body(event(reaction={"mid": "aWdf_1", "action": "unreact"})))
    assert unreact.text == "[reaction removed]"


def test_ice_breaker_postback():
    ev = one(body(event(postback={"mid": "aWdf_pb", "title": "What are your hours?", "payload": "HOURS"})))
    assert (ev.kind, ev.text, ev.provider_message_id, ev.content["payload"]) == \
        ("postback", "What are your hours?", "aWdf_pb", "HOURS")


def test_seen_is_a_read_status_for_that_message():
    [ev] = parse(body(event(read={"mid": "aWdf_out"})))
    assert ev == StatusUpdate(external_id=IG, provider_message_id="aWdf_out", status="read", timestamp=str(T),
                              occurred_at=WHEN, recipient=IGSID, recipient_kind="igsid")


def test_referral_without_message_is_a_notice():
    ev = one(body(event(referral={"ref": "ig.me-link", "source": "IGME", "type": "OPEN_THREAD"})))
    assert (ev.topic, ev.subject, ev.external_id) == ("instagram:referral", ("igsid", IGSID), IG)


def test_standby_and_handover():
    events = parse(body(standby=[event(message={"mid": "aWdf_s", "text": "hi"}),
                                 event(pass_thread_control={"new_owner_app_id": "1217981644879628"})]))
    assert events[0].content["standby"] is True
    assert isinstance(events[1], Notice) and events[1].topic == "instagram:pass_thread_control"
    assert events[1].detail["standby"] is True


def test_comment_changes_and_messages_in_one_body():
    value = {"object": "instagram", "entry": [
        {"id": IG, "time": 1740156774, "changes": [
            {"field": "comments", "value": {"id": "c1", "from": {"id": IGSID, "username": "ana"}, "text": "Precio?",
                                            "media": {"id": "m1", "media_product_type": "FEED"}}},
            {"field": "story_insights", "value": {"media_id": "s1", "impressions": 44}},
            "garbage"]},
        {"id": IG, "time": T, "messaging": [event(message={"mid": "aWdf_1", "text": "x"})]},
    ]}
    events = parse(value)
    assert [getattr(e, "topic", None) or getattr(e, "what", None) or e.kind for e in events] == \
        ["instagram:comments", "instagram:story_insights", "change:malformed", "text"]
    assert events[0].detail["text"] == "Precio?" and events[0].external_id == IG


def test_dashboard_test_shape_for_a_change_and_for_an_event():
    change = PROVIDER.parse(raw_of({"field": "comments", "value": {"id": "c1", "text": "test"}}), {})
    assert change == [Notice(external_id=None, topic="instagram:comments", detail={"id": "c1", "text": "test"})]
    [msg] = PROVIDER.parse(raw_of({"field": "messages", "value": event(message={"mid": "aWdf_t", "text": "t"})}), {})
    assert (msg.external_id, msg.sender, msg.kind) == (IG, IGSID, "text")


def test_page_bodies_are_not_instagram():
    assert parse({"object": "page", "entry": [{"id": "1", "messaging": []}]}) == [Unsupported("object:page")]


def test_channel_ids_and_bad_request():
    value = body(event(message={"mid": "aWdf_1", "text": "x"}))
    assert PROVIDER.channel_ids(raw_of(value), {}, "") == [IG]
    with pytest.raises(BadRequest):
        PROVIDER.channel_ids(b"<xml/>", {}, "")


def test_signature_and_handshake_are_meta_s():
    raw = raw_of(body(event(message={"mid": "aWdf_1", "text": "ñ"})))
    good = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert PROVIDER.verify(raw, {"X-Hub-Signature-256": good}, "", {"app_secret": SECRET})
    assert not PROVIDER.verify(raw, {"X-Hub-Signature-256": good}, "", {"app_secret": "facebook-app-secret"})
    assert not PROVIDER.verify(raw, {}, "", {"app_secret": SECRET})
    assert not PROVIDER.verify(raw.replace(b"aWdf_1", b"aWdf_2"), {"X-Hub-Signature-256": good}, "",
                               {"app_secret": SECRET})
    params = {"hub.mode": "subscribe", "hub.verify_token": "t", "hub.challenge": "c"}
    assert PROVIDER.handshake(params) == ("t", "c")
    assert PROVIDER.dedupe_key(raw, {}) == "sha256:" + hashlib.sha256(raw).hexdigest()

"""Messenger parse, one event type at a time, plus batches and malformed bodies. Pure; no database."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from gateway.providers import BadRequest, InboundMessage, Media, Notice, StatusUpdate, Unsupported
from webhooks.messenger import PROVIDER

PAGE = "106000000000001"
PSID = "7000000000000001"
T = 1700000000123          # ms
WHEN = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc)


def event(**fields) -> dict:
    base = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": T}
    base.update(fields)
    return base


def echo_event(**message) -> dict:
    return {"sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": T,
            "message": {"is_echo": True, **message}}


def body(*events, standby=(), page=PAGE, obj="page") -> dict:
    entry = {"id": page, "time": T + 500, "messaging": list(events)}
    if standby:
        entry["standby"] = list(standby)
    return {"object": obj, "entry": [entry]}


def raw_of(value) -> bytes:
    # Meta's wire form: compact, non-ASCII escaped as \uXXXX.
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def parse(value):
    return PROVIDER.parse(value if isinstance(value, bytes) else raw_of(value), {})


def one(value):
    events = parse(value)
    assert len(events) == 1, events
    return events[0]


def message(**msg) -> InboundMessage:
    ev = one(body(event(message={"mid": "m_1", **msg})))
    assert isinstance(ev, InboundMessage), ev
    return ev


# --- messages ----------------------------------------------------------------------------------

def test_text_message_fields():
    ev = message(text="hello")
    assert ev == InboundMessage(
        external_id=PAGE, sender=PSID, sender_kind="psid", provider_message_id="m_1", kind="text",
        text="hello", timestamp=str(T), occurred_at=WHEN, content={"text": "hello"})


def test_quick_reply():
    ev = message(text="Red", quick_reply={"payload": "COLOR_RED"})
    assert (ev.kind, ev.text, ev.content["quick_reply"]) == ("quick_reply", "Red", {"payload": "COLOR_RED"})


def test_reply_to_and_metadata_and_app_id_are_kept():
    ev = message(text="yes", reply_to={"mid": "m_0"}, metadata="ticket-9", app_id="123")
    assert ev.reply_to == "m_0"
    assert ev.content == {"text": "yes", "reply_to": {"mid": "m_0"}, "metadata": "ticket-9", "app_id": "123"}


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file"])
def test_media_attachments(kind):
    url = f"https://cdn.fbsbx.com/v/t59/{kind}/Quarterly%20report.pdf?_nc=1&oh=abc"
    ev = message(attachments=[{"type": kind, "payload": {"url": url}}])
    assert (ev.kind, ev.text) == (kind, f"[{kind}]")
    assert ev.media == (Media(kind=kind, url=url, filename="Quarterly report.pdf" if kind == "file" else None),)
    assert ev.content["attachments"][0]["payload"]["url"] == url


def test_several_attachments_are_all_media():
    ev = message(attachments=[{"type": "image", "payload": {"url": "https://x/1.jpg"}},
                              {"type": "image", "payload": {"url": "https://x/2.jpg"}}])
    assert ev.kind == "image" and ev.text == "[image] [image]"
    assert [m.url for m in ev.media] == ["https://x/1.jpg", "https://x/2.jpg"]


def test_sticker():
    ev = message(attachments=[{"type": "image", "payload": {"url": "https://x/s.png", "sticker_id": 369239263222822}}])
    assert (ev.kind, ev.text) == ("sticker", "[sticker]")
    assert ev.media == (Media(kind="sticker", url="https://x/s.png"),)


def test_location():
    ev = message(attachments=[{"type": "location", "title": "Pinned Location",
                               "payload": {"coordinates": {"lat": 40.4168, "long": -3.7038}}}])
    assert (ev.kind, ev.text, ev.media) == ("location", "Pinned Location (40.4168,-3.7038)", ())


def test_link_preview_with_text_is_a_text_message():
    ev = message(text="look https://example.com", attachments=[
        {"type": "fallback", "title": "Example Domain", "url": "https://example.com", "payload": None}])
    assert (ev.kind, ev.text, ev.media) == ("text", "look https://example.com", ())
    alone = message(attachments=[{"type": "fallback", "title": "Example Domain", "url": "https://example.com"}])
    assert (alone.kind, alone.text) == ("link", "Example Domain")


def test_template_echo_renders_its_title():
    ev = one(body(echo_event(mid="m_e", attachments=[{"type": "template", "payload": {
        "template_type": "generic", "elements": [{"title": "Your order", "subtitle": "2 items"}]}}])))
    assert (ev.kind, ev.text, ev.direction) == ("template", "Your order", "outbound")


def test_unknown_attachment_type_is_recorded_not_dropped():
    ev = message(attachments=[{"type": "hologram", "payload": {"url": "https://x/h.bin"}}])
    assert (ev.kind, ev.text) == ("attachment", "[attachment]")
    assert ev.media == (Media(kind="file", url="https://x/h.bin", filename="h.bin"),)


def test_deleted_message_is_a_revoke_with_its_own_id():
    ev = message(is_deleted=True)
    assert (ev.kind, ev.reply_to, ev.text) == ("revoke", "m_1", "[message deleted]")
    assert ev.provider_message_id == "m_1:deleted"


def test_unsupported_message():
    ev = message(is_unsupported=True)
    assert (ev.kind, ev.provider_message_id, ev.text) == ("unsupported", "m_1", "[unsupported message]")


def test_message_with_nothing_readable():
    ev = message()
    assert (ev.kind, ev.text) == ("unsupported", "[unsupported message]")


def test_message_edit():
    ev = one(body(event(message_edit={"mid": "m_1", "text": "hello (fixed)", "num_edit": 2})))
    assert (ev.kind, ev.text, ev.reply_to, ev.provider_message_id) == ("edit", "hello (fixed)", "m_1", "m_1:edit:2")


def test_non_ascii_text_escaped_and_raw_utf8():
    text = "¡Hola! 👋 Привет, 你好"
    escaped = raw_of(body(event(message={"mid": "m_u", "text": text})))
    assert b"\\ud83d\\udc4b" in escaped
    assert one(escaped).text == text
    utf8 = json.dumps(body(event(message={"mid": "m_u", "text": text})), ensure_ascii=False).encode("utf-8")
    assert one(utf8).text == text


# --- echoes ------------------------------------------------------------------------------------

def test_echo_is_outbound_with_the_customer_as_sender():
    ev = one(body(echo_event(mid="m_echo", text="Thanks for your order", app_id="263902037430900",
                             metadata="from-inbox")))
    assert ev.direction == "outbound"
    assert (ev.sender, ev.sender_kind, ev.external_id) == (PSID, "psid", PAGE)
    assert (ev.provider_message_id, ev.kind, ev.text) == ("m_echo", "text", "Thanks for your order")
    assert ev.content["app_id"] == "263902037430900" and ev.content["is_echo"] is True


def test_echo_of_our_own_send_settles_it_as_sent():
    ours = "01a20bb3-6b87-7cde-aa39-c1c959a6b562"     # the gateway's message id, sent as metadata
    ev = one(body(echo_event(mid="m_ours", text="Tu pedido salió", app_id="263902037430900", metadata=ours)))
    assert isinstance(ev, StatusUpdate)
    assert (ev.status, ev.provider_message_id, ev.callback_data) == ("sent", "m_ours", ours)
    assert (ev.external_id, ev.recipient, ev.recipient_kind) == (PAGE, PSID, "psid")
    # Metadata that is not one of our ids (another app, a person in the Page inbox) stays a message.
    other = one(body(echo_event(mid="m_theirs", text="hi", metadata="not-a-uuid-but-36-characters-long-xx")))
    assert other.direction == "outbound" and other.provider_message_id == "m_theirs"


def test_echo_from_the_dashboard_test_shape_routes_to_the_page():
    raw = raw_of({"field": "message_echoes", "value": echo_event(mid="m_echo", text="hi")})
    [ev] = PROVIDER.parse(raw, {})
    assert (ev.external_id, ev.sender, ev.direction) == (PAGE, PSID, "outbound")
    assert PROVIDER.channel_ids(raw, {}, "") == [PAGE]


# --- postbacks and reactions -------------------------------------------------------------------

def test_postback_with_mid_and_referral():
    referral = {"ref": "summer", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    ev = one(body(event(postback={"mid": "m_pb", "title": "Get Started", "payload": "START", "referral": referral})))
    assert (ev.kind, ev.text, ev.provider_message_id) == ("postback", "Get Started", "m_pb")
    assert ev.content == {"mid": "m_pb", "title": "Get Started", "payload": "START", "referral": referral}


def test_postback_without_mid_gets_a_deterministic_id():
    value = body(event(postback={"title": "Menu", "payload": "MENU"}))
    first, again = one(value), one(value)
    assert first.provider_message_id == again.provider_message_id == f"postback:{PSID}:{T}"


def test_synthetic_ids_ignore_the_entry_time_of_a_retry():
    # No event timestamp: the id comes from the event itself, not from entry.time (which a retry may change).
    pb = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "postback": {"payload": "MENU"}}
    first = one({"object": "page", "entry": [{"id": PAGE, "time": T, "messaging": [pb]}]})
    retry = one({"object": "page", "entry": [{"id": PAGE, "time": T + 60000, "messaging": [pb]}]})
    assert first.provider_message_id == retry.provider_message_id
    assert first.provider_message_id.startswith(f"postback:{PSID}:")
    assert first.timestamp is None and first.occurred_at is not None


def test_reaction_and_its_removal():
    react = one(body(event(reaction={"mid": "m_1", "action": "react", "reaction": "love", "emoji": "❤️"})))
    assert (react.kind, react.text, react.reply_to) == ("reaction", "❤️", "m_1")
    assert react.provider_message_id == f"reaction:m_1:{PSID}:{T}:react"
    removed = one(body(event(reaction={"mid": "m_1", "action": "unreact"})))
    assert (removed.text, removed.reply_to) == ("[reaction removed]", "m_1")
    assert removed.provider_message_id != react.provider_message_id


# --- deliveries and reads ----------------------------------------------------------------------

def test_delivery_gives_one_status_per_mid_and_a_watermark():
    events = parse(body(event(delivery={"mids": ["m_a", "m_b"], "watermark": T - 1000})))
    assert [(e.provider_message_id, e.status) for e in events] == \
        [("m_a", "delivered"), ("m_b", "delivered"), (None, "delivered")]
    assert all(isinstance(e, StatusUpdate) and e.recipient == PSID and e.recipient_kind == "psid"
               and e.external_id == PAGE and e.occurred_at == WHEN for e in events)
    assert events[2].watermark == datetime(2023, 11, 14, 22, 13, 19, 123000, tzinfo=timezone.utc)
    assert events[0].watermark is None


def test_delivery_without_mids_is_only_a_watermark():
    [ev] = parse(body(event(delivery={"watermark": T})))
    assert (ev.provider_message_id, ev.status, ev.watermark) == (None, "delivered", WHEN)


def test_read_watermark():
    [ev] = parse(body(event(read={"watermark": T})))
    assert (ev.provider_message_id, ev.status, ev.watermark, ev.recipient) == (None, "read", WHEN, PSID)


# --- notices -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, payload", [
    ("optin", {"ref": "PASS_THROUGH", "user_ref": "UREF"}),
    ("referral", {"ref": "ad-42", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "42"}),
    ("account_linking", {"status": "linked", "authorization_code": "code"}),
    ("pass_thread_control", {"new_owner_app_id": "123", "metadata": "to inbox"}),
    ("take_thread_control", {"previous_owner_app_id": "123", "metadata": "back"}),
    ("request_thread_control", {"requested_owner_app_id": "123"}),
])
def test_events_that_are_notices(name, payload):
    ev = one(body(event(**{name: payload})))
    assert isinstance(ev, Notice)
    assert (ev.topic, ev.external_id, ev.subject, ev.occurred_at) == (f"messenger:{name}", PAGE, ("psid", PSID), WHEN)
    assert ev.detail[name] == payload


def test_policy_enforcement_has_no_customer():
    ev = one(body({"recipient": {"id": PAGE}, "timestamp": T,
                   "policy-enforcement": {"action": "block", "reason": "spam"}}))
    assert (ev.topic, ev.subject, ev.external_id) == ("messenger:policy-enforcement", None, PAGE)


def test_referral_with_a_message_stays_on_the_message():
    referral = {"ref": "ad-42", "source": "ADS", "type": "OPEN_THREAD"}
    ev = one(body(event(message={"mid": "m_ad", "text": "Is this available?"}, referral=referral)))
    assert isinstance(ev, InboundMessage) and ev.content["referral"] == referral


def test_guest_user_ref_message_is_a_notice():
    ev = one(body({"sender": {"user_ref": "guest-1"}, "recipient": {"id": PAGE}, "timestamp": T,
                   "message": {"mid": "m_g", "text": "hi from the chat plugin"}}))
    assert (type(ev), ev.topic, ev.subject) == (Notice, "messenger:message", None)
    assert ev.detail["sender"] == {"user_ref": "guest-1"}


def test_page_feed_change_is_a_notice():
    value = {"object": "page", "entry": [{"id": PAGE, "time": 1700000000, "changes": [
        {"field": "feed", "value": {"item": "comment", "verb": "add"}}]}]}
    ev = one(value)
    assert (ev.topic, ev.external_id, ev.detail) == ("messenger:feed", PAGE, {"item": "comment", "verb": "add"})
    assert ev.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)


# --- standby and batches -----------------------------------------------------------------------

def test_standby_events_are_recorded_and_flagged():
    events = parse(body(standby=[event(message={"mid": "m_s", "text": "hello other app"}),
                                 event(read={"watermark": T})]))
    msg, read = events
    assert isinstance(msg, InboundMessage) and msg.content["standby"] is True and msg.direction == "inbound"
    assert isinstance(read, StatusUpdate) and read.status == "read"


def test_batched_envelope_keeps_every_entry_and_event_in_order():
    other_page, other_psid = "106000000000002", "7000000000000002"
    value = {"object": "page", "entry": [
        {"id": PAGE, "time": T, "messaging": [
            event(message={"mid": "m_1", "text": "one"}),
            event(message={"mid": "m_2", "text": "two"}),
            event(delivery={"mids": ["m_out"], "watermark": T}),
        ], "standby": [event(postback={"mid": "m_pb", "title": "Yes"})]},
        {"id": other_page, "time": T, "messaging": [
            {"sender": {"id": other_psid}, "recipient": {"id": other_page}, "timestamp": T,
             "message": {"mid": "m_3", "text": "three"}},
        ]},
    ]}
    events = parse(value)
    assert [(type(e).__name__, e.external_id, getattr(e, "provider_message_id", None)) for e in events] == [
        ("InboundMessage", PAGE, "m_1"), ("InboundMessage", PAGE, "m_2"),
        ("StatusUpdate", PAGE, "m_out"), ("StatusUpdate", PAGE, None),
        ("InboundMessage", PAGE, "m_pb"), ("InboundMessage", other_page, "m_3")]
    assert events[-1].sender == other_psid
    assert PROVIDER.channel_ids(raw_of(value), {}, "") == [PAGE, other_page]


# --- malformed input ---------------------------------------------------------------------------

def test_malformed_items_never_lose_their_neighbours():
    good = event(message={"mid": "m_ok", "text": "ok"})
    value = {"object": "page", "entry": [
        "not an entry",
        {"id": PAGE, "time": T, "messaging": [
            good, "not an event", event(message="not an object"), event(message={"text": "no mid"}),
            event(reaction={"action": "react"}), event(delivery={}), event(read={"mid": 5}),
            event(hologram={"x": 1}), {"sender": {"id": PSID}, "recipient": {"id": PAGE}},
            {"recipient": {"id": PAGE}, "message": {"mid": "m_nobody", "text": "?"}}, good]},
        {"id": PAGE, "messaging": {"not": "a list"}},
        {"id": PAGE},
    ]}
    events = parse(value)
    assert [e.what if isinstance(e, Unsupported) else e.provider_message_id for e in events] == [
        "entry", "m_ok", "event:malformed", "message:malformed", "message:no-mid", "reaction:no-mid",
        "delivery:empty", "read:empty", "event:hologram", "event:empty", "message:no-sender", "m_ok",
        "messaging:malformed", "entry:empty"]


@pytest.mark.parametrize("raw, what", [
    (b"not json", "invalid-json"),
    (b"\xff\xfe", "invalid-json"),
    (b"[1, 2]", "envelope"),
    (b'{"object":"page"}', "envelope"),
    (b'{"object":"page","entry":[]}', "envelope"),
    (b'{"object":"instagram","entry":[{"id":"1","messaging":[]}]}', "object:instagram"),
    (b'{"object":"whatsapp_business_account","entry":[]}', "object:whatsapp_business_account"),
    (b'{"entry":[]}', "object:None"),
])
def test_unreadable_bodies(raw, what):
    assert PROVIDER.parse(raw, {}) == [Unsupported(what)]


def test_deep_nesting_does_not_raise():
    assert PROVIDER.parse(b"[" * 100000 + b"]" * 100000, {}) == [Unsupported("invalid-json")]


def test_channel_ids_rejects_non_json_and_non_objects():
    for raw in (b"not json", b"", b"[]", b'"page"', b"\xff"):
        with pytest.raises(BadRequest):
            PROVIDER.channel_ids(raw, {}, "")


def test_channel_ids_never_raises_on_odd_objects():
    odd = [b"{}", b'{"entry": 5}', b'{"entry": [5, {"id": {"x": 1}}, {"messaging": [7, {"recipient": 3}]}]}',
           b'{"field": "x", "value": 3}']
    for raw in odd:
        assert PROVIDER.channel_ids(raw, {}, "") == []


def test_channel_ids_puts_entry_ids_before_event_ids():
    value = body(event(message={"mid": "m"}), echo_event(mid="m_e"), page="999")
    value["entry"].append({"time": T, "standby": [
        {"sender": {"id": "777"}, "recipient": {"id": "5"}, "message": {"mid": "e", "is_echo": True}}]})
    assert PROVIDER.channel_ids(raw_of(value), {}, "") == ["999", PAGE, "777"]

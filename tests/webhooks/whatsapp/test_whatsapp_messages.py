"""Messages: text renditions, structured content, media refs, reply targets, identities, echoes. Pure."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.providers import IdentityChange, InboundMessage, Media, Unsupported


def message(wa, name: str) -> InboundMessage:
    return wa.only(wa.parse(wa.load(name)), InboundMessage)


def test_text_message(wa):
    msg = message(wa, "pywa_message__text.json")
    assert msg.external_id == "1122334455667"
    assert (msg.sender, msg.sender_kind, msg.direction) == ("+972987654321", "phone", "inbound")
    assert msg.provider_message_id == "wamid.xyzxyz"
    assert msg.kind == "text" and msg.text == "Body Text"
    assert msg.sender_name == "Test Name"
    assert msg.timestamp == "1697043223"
    assert msg.occurred_at == datetime(2023, 10, 11, 16, 53, 43, tzinfo=timezone.utc)
    assert msg.content["text"] == {"body": "Body Text"}
    assert msg.content["user_id"] == "US.13491208655302741918"
    assert msg.content["parent_user_id"] == "US.ENT.11815799212886844830"
    assert msg.media == () and msg.reply_to is None


@pytest.mark.parametrize("name, text", [
    ("pywa_message__image.json", "[image]"),
    ("pywa_message__video.json", "caption"),
    ("pywa_message__document.json", "caption"),
    ("pywa_message__audio.json", "[audio]"),
    ("pywa_message__voice.json", "[voice message]"),
    ("pywa_message__static_sticker.json", "[sticker]"),
    ("pywa_message__animated_sticker.json", "[sticker]"),
    ("pywa_message__chosen_location.json", "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025"),
    ("pywa_message__current_location.json", "12.25089,43.90539"),
    ("pywa_message__contacts.json", "Chandler Bing, Monica, Rachel Green"),
    ("pywa_message__order.json", "[order: 3 items]"),
    ("pywa_message__reaction.json", "😮"),
    ("pywa_message__unreaction_empty.json", "[reaction removed]"),
    ("pywa_message__unreaction_no_emoji.json", "[reaction removed]"),
    ("pywa_message__referral.json", "BODY"),
    ("pywa_message__reply.json", "replied text"),
    ("pywa_message__forwarded.json", "forwarded text"),
    ("pywa_message__unsupported.json", "[unsupported message]"),
    ("pywa_message__unsupported_with_type.json", "[unsupported message: pool]"),
    ("pywa_message__interactive_message_with_err.json", "[unsupported message]"),
    ("pywa_callback_button__button.json", "title"),
    ("pywa_callback_button__quick_reply.json", "title"),
    ("pywa_callback_selection__description.json", "title"),
    ("pywa_flow_completion__completion.json", "[form reply]"),
    ("pywa_call_permission_update__accept.json", "[call permission: accept]"),
    ("pywa_call_permission_update__reject.json", "[call permission: reject]"),
    ("pywa_system__phone_number_change.json", "User A changed from 972987654321 to 972912345678"),
    ("pywa_system__identity_change.json", "User identity changed"),
    ("pywa_edited_message__image.json", "[edited] Updated image caption"),
    ("pywa_deleted_message__revoke.json", "[message deleted]"),
])
def test_text_rendition_per_type(wa, name, text):
    assert message(wa, name).text == text


def test_renditions_of_shapes_without_a_fixture(wa):
    body = wa.load("pywa_message__text.json")
    msg = wa.value(body)["messages"][0]
    del msg["text"]
    cases = [
        ({"type": "request_welcome"}, "[chat opened]"),
        ({"type": "document", "document": {"id": "9", "filename": "offer.pdf"}}, "offer.pdf"),
        ({"type": "image", "image": {"id": "9", "caption": "Look at this"}}, "Look at this"),
        ({"type": "order", "order": {"text": "fast please", "product_items": [{}]}}, "[order: 1 items] fast please"),
        ({"type": "location", "location": {"latitude": 1.5, "longitude": 2, "name": "Home"}}, "Home"),
        ({"type": "button", "button": {"payload": "YES"}}, "YES"),
        ({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "row-1"}}}, "row-1"),
        ({"type": "interactive", "interactive": {"type": "product_list"}}, "[interactive]"),
        ({"type": "text", "text": {"body": ""}}, "[empty text]"),
        ({"type": "unknown", "errors": [{"code": 131051}]}, "[unsupported message]"),
        ({"type": "poll_v9", "poll_v9": {"q": "?"}}, "[unsupported message]"),
        ({"type": "edit", "edit": {"original_message_id": "wamid.o", "message": {"type": "text",
                                                                              "text": {"body": "fixed"}}}},
         "[edited] fixed"),
    ]
    for shape, text in cases:
        for key in [k for k in msg if k not in ("from", "id", "timestamp")]:
            del msg[key]
        msg.update(shape)
        got = wa.only(wa.parse(body), InboundMessage)
        assert (got.kind, got.text) == (shape["type"], text)
    assert got.content["edit"]["message"]["text"]["body"] == "fixed"


def test_unknown_type_keeps_its_kind_and_object(wa):
    body = wa.load("pywa_message__text.json")
    msg = wa.value(body)["messages"][0]
    del msg["text"]
    msg.update(type="poll", poll={"question": "Lunch?"})
    got = wa.only(wa.parse(body), InboundMessage)
    assert got.kind == "poll" and got.content["poll"] == {"question": "Lunch?"}


def test_media_refs_for_every_media_type(wa):
    image = message(wa, "pywa_message__image.json")
    assert image.media == (Media(kind="image", provider_media_id="65463453", url=None, mime_type="image/jpeg",
                                 sha256="4654+8g="),)
    with_url = message(wa, "pywa_message__media_with_url.json").media[0]
    assert with_url.provider_media_id == "65463453"
    assert with_url.url.startswith("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=65463453")
    doc = message(wa, "pywa_message__document.json").media[0]
    assert (doc.kind, doc.filename, doc.caption, doc.mime_type) == \
        ("document", "filename.pdf", "caption", "application/pdf")
    assert doc.sha256 == "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY="   # base64, as Meta gives it
    video = message(wa, "pywa_message__video.json").media[0]
    assert (video.kind, video.provider_media_id, video.caption) == ("video", "765756756", "caption")
    voice = message(wa, "pywa_message__voice.json")
    assert voice.media[0].kind == "audio" and voice.media[0].mime_type == "audio/ogg; codecs=opus"
    assert voice.content["audio"]["voice"] is True
    sticker = message(wa, "pywa_message__animated_sticker.json")
    assert sticker.media[0].kind == "sticker" and sticker.content["sticker"]["animated"] is True
    for name in ("pywa_message__text.json", "pywa_message__chosen_location.json", "pywa_message__order.json"):
        assert message(wa, name).media == ()


def test_edited_message_references_the_original_and_re_announces_its_media(wa):
    msg = message(wa, "pywa_edited_message__image.json")
    assert msg.kind == "edit"
    assert msg.reply_to == "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    assert msg.content["edit"]["message"]["image"]["caption"] == "Updated image caption"
    media = msg.media[0]
    assert (media.kind, media.provider_media_id, media.url, media.caption) == \
        ("image", "1234567890", "https://media.example.com/updated-image.jpg", "Updated image caption")
    # `from` (16505551234) is not the contacts card's wa_id in this sample: no name or alias is borrowed
    assert msg.sender == "+16505551234" and msg.sender_name is None and msg.aliases == ()


def test_revoke_references_the_original(wa):
    msg = message(wa, "pywa_deleted_message__revoke.json")
    assert msg.kind == "revoke" and msg.reply_to == "<ORIGINAL_WHATSAPP_MESSAGE_ID>"
    # the sample's `from` is a doc placeholder; the only contacts card names the sender
    assert msg.sender == "+972987654321" and msg.sender_name == "Test Name"


def test_reply_to_for_replies_reactions_and_buttons(wa):
    assert message(wa, "pywa_message__reply.json").reply_to == "wamid.xyzxyz=="
    assert message(wa, "pywa_message__reaction.json").reply_to == "wamid.yzxyzx="
    assert message(wa, "pywa_message__unreaction_no_emoji.json").reply_to == "wamid.yzxyzx="
    assert message(wa, "pywa_callback_button__quick_reply.json").reply_to == "wamid.xyzxyz=="
    assert message(wa, "pywa_callback_selection__callback.json").reply_to == "wamid.xyzxyz"
    assert message(wa, "pywa_callback_button__quick_reply_without_context.json").reply_to is None
    forwarded = message(wa, "pywa_message__forwarded.json")
    assert forwarded.reply_to is None and forwarded.content["context"] == {"forwarded": True}
    many = message(wa, "pywa_message__forwarded_many_times.json")
    assert many.content["context"] == {"frequently_forwarded": True}


def test_interactive_and_flow_content(wa):
    listed = message(wa, "pywa_callback_selection__description.json")
    assert listed.content["interactive"]["list_reply"] == {"id": "callback_data", "title": "title",
                                                            "description": "description"}
    flow = message(wa, "pywa_flow_completion__completion.json")
    assert flow.content["flow_response"] == {
        "comment_text": "Comment Text", "delivery_rating": "4", "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.",
        "purchase_rating": "2", "recommend_radio": "0", "cs_rating": "0"}
    assert isinstance(flow.content["interactive"]["nfm_reply"]["response_json"], str)   # the original is kept
    assert "flow_token" not in message(wa, "pywa_flow_completion__without_flow_token.json").content["flow_response"]


def test_flow_reply_with_broken_response_json_still_parses(wa):
    body = wa.load("pywa_flow_completion__completion.json")
    wa.value(body)["messages"][0]["interactive"]["nfm_reply"]["response_json"] = "{not json"
    msg = wa.only(wa.parse(body), InboundMessage)
    assert msg.text == "[form reply]" and "flow_response" not in msg.content


def test_template_button_order_referral_contacts_content(wa):
    button = message(wa, "pywa_callback_button__quick_reply.json")
    assert button.content["button"] == {"payload": "callback_data", "text": "title"}
    order = message(wa, "pywa_message__order.json")
    assert order.content["order"]["product_items"][0]["product_retailer_id"] == "HAMBURGER"
    referral = message(wa, "pywa_message__referral.json")
    assert referral.content["referral"]["ctwa_clid"] == "CTWA_CLID" and referral.content["text"] == {"body": "BODY"}
    cards = message(wa, "pywa_message__contacts.json")
    assert cards.content["contacts"][0]["phones"][0]["phone"] == "+1 555-555-5555"
    location = message(wa, "pywa_message__chosen_location.json")
    assert location.content["location"]["latitude"] == 37.4611978


def test_unsupported_message_keeps_its_errors(wa):
    odd = message(wa, "pywa_message__unsupported.json")
    assert odd.kind == "unsupported" and odd.content["errors"][0]["code"] == 131051
    assert message(wa, "pywa_message__unsupported_with_type.json").content["unsupported"] == {"type": "pool"}


def test_phone_and_bsuid_become_sender_and_alias(wa):
    msg = message(wa, "pywa_callback_button__quick_reply_without_context.json")   # from + from_user_id
    assert (msg.sender, msg.sender_kind) == ("+972987654321", "phone")
    assert msg.aliases == (("bsuid", "US.13491208655302741918"),)
    assert message(wa, "pywa_system__identity_change.json").aliases == ()   # no BSUID known


def test_bsuid_only_sender(wa):
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    del value["messages"][0]["from"]
    value["messages"][0]["from_user_id"] = "US.13491208655302741918"
    del value["contacts"][0]["wa_id"]
    value["contacts"][0]["profile"]["username"] = "@greenbean"
    msg = wa.only(wa.parse(body), InboundMessage)
    assert (msg.sender, msg.sender_kind) == ("US.13491208655302741918", "bsuid")
    assert msg.aliases == () and msg.sender_name == "Test Name"
    assert msg.content["parent_user_id"] == "US.ENT.11815799212886844830"
    assert msg.content["username"] == "@greenbean"


def test_sender_taken_from_the_only_contacts_card_when_the_message_names_nobody(wa):
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    del value["messages"][0]["from"]
    del value["contacts"][0]["wa_id"]
    msg = wa.only(wa.parse(body), InboundMessage)
    assert (msg.sender, msg.sender_kind) == ("US.13491208655302741918", "bsuid")
    # with two cards nobody can tell which one sent it
    value["contacts"].append({"profile": {"name": "Someone Else"}, "wa_id": "34600000009"})
    assert wa.parse(body) == [Unsupported("message:no-sender")]


def test_message_naming_nobody_is_unsupported_not_dropped(wa):
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    del value["messages"][0]["from"]
    value["contacts"] = []
    assert wa.parse(body) == [Unsupported("message:no-sender")]


def test_user_changed_number_emits_message_then_identity_change(wa):
    events = wa.parse(wa.load("pywa_system__phone_number_change.json"))
    assert [type(e) for e in events] == [InboundMessage, IdentityChange]
    msg, change = events
    assert msg.kind == "system" and msg.sender == "+972987654321"
    assert msg.content["system"]["type"] == "user_changed_number"
    assert change == IdentityChange(external_id="1122334455667", kind="phone", old="+972987654321",
                                    new="+972912345678")


def test_customer_changed_number_older_name_too(wa):
    body = wa.load("pywa_system__phone_number_change.json")
    system = wa.value(body)["messages"][0]["system"]
    system["type"] = "customer_changed_number"
    system["new_wa_id"] = system.pop("wa_id")
    change = wa.only(wa.parse(body), IdentityChange)
    assert (change.old, change.new) == ("+972987654321", "+972912345678")


def test_identity_changed_is_only_a_message(wa):
    events = wa.parse(wa.load("pywa_system__identity_change.json"))
    msg = wa.only(events, InboundMessage)
    assert len(events) == 1
    assert msg.content["identity"] == {"acknowledged": True, "created_timestamp": "1697044706", "hash": "xyzxyz"}
    assert msg.content["system"]["type"] == "customer_identity_changed"


def test_number_change_without_a_new_number_is_just_the_message(wa):
    body = wa.load("pywa_system__phone_number_change.json")
    del wa.value(body)["messages"][0]["system"]["wa_id"]
    assert [type(e) for e in wa.parse(body)] == [InboundMessage]


# --- coexistence echoes (smb_message_echoes) ---------------------------------------------------

def test_echo_is_outbound_to_the_customer(wa):
    body = wa.load("pywa_outgoing_message__text.json")
    echo = wa.value(body)["message_echoes"][0]
    echo.update({"from": "972123456789", "to": "972987654321", "to_user_id": "US.13491208655302741918",
                 "id": "wamid.echo1"})
    msg = wa.only(wa.parse(body), InboundMessage)
    assert msg.direction == "outbound"
    assert (msg.sender, msg.sender_kind) == ("+972987654321", "phone")   # the customer, never the business
    assert msg.aliases == (("bsuid", "US.13491208655302741918"),)
    assert msg.sender_name == "Test Name" and msg.text == "Test message"
    assert msg.external_id == "1122334455667"


def test_echo_sample_as_published_uses_to_user_id(wa):
    msg = wa.only(wa.parse(wa.load("pywa_outgoing_message__text.json")), InboundMessage)
    assert msg.direction == "outbound"
    assert (msg.sender, msg.sender_kind) == ("<BSUID>", "bsuid")   # placeholders in the published sample
    assert msg.content["parent_user_id"] == "<PARENT_BSUID>"


def test_echo_with_from_and_to_swapped_still_names_the_customer(wa):
    # pywa's edit/delete echo samples put the business's display number in `to`
    for name, kind, text in (("pywa_outgoing_message__edit.json", "edit", "[edited] Text was edited"),
                             ("pywa_outgoing_message__delete.json", "revoke", "[message deleted]")):
        msg = wa.only(wa.parse(wa.load(name)), InboundMessage)
        assert (msg.direction, msg.kind, msg.text) == ("outbound", kind, text)
        assert msg.sender == "+972987654321" and msg.reply_to == "wamid.zzzzzz"


def test_echo_without_any_customer_is_unsupported(wa):
    body = wa.load("pywa_outgoing_message__text.json")
    value = wa.value(body)
    value["contacts"] = []
    for key in ("to", "to_user_id"):
        del value["message_echoes"][0][key]
    assert wa.parse(body) == [Unsupported("echo:no-recipient")]

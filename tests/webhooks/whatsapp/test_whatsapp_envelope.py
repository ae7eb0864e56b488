"""The provider object, routing, batched envelopes, odd bodies, non-ASCII text. Pure; no database."""
from __future__ import annotations

import copy
import json

import pytest

from gateway.providers import (BadRequest, InboundMessage, Notice, OutboundMessage, SendResult, StatusUpdate,
                               Unsupported)
from webhooks.whatsapp import PROVIDER


def test_provider_declares_its_contract():
    assert PROVIDER.name == "whatsapp"
    assert PROVIDER.required_credentials == ("app_secret", "access_token", "verify_token")
    assert PROVIDER.optional_credentials == ()
    assert PROVIDER.ack == ("", "text/plain")
    for duty in ("channel_ids", "handshake", "verify", "dedupe_key", "parse", "download", "send"):
        assert callable(getattr(PROVIDER, duty))


def test_handshake_offers_token_and_challenge():
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "tok-123"}
    assert PROVIDER.handshake(params) == ("tok-123", "1158201444")
    from werkzeug.datastructures import MultiDict
    assert PROVIDER.handshake(MultiDict(params)) == ("tok-123", "1158201444")


@pytest.mark.parametrize("params", [
    {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": "t"},
    {"hub.challenge": "1", "hub.verify_token": "t"},
    {"hub.mode": "subscribe", "hub.verify_token": "t"},
    {"hub.mode": "subscribe", "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""},
    {},
])
def test_handshake_none_for_anything_else(params):
    assert PROVIDER.handshake(params) is None


def test_channel_ids_phone_number_ids_first_then_waba_ids(wa):
    raw = (wa.fixtures / "pywa_message__text.json").read_bytes()
    assert PROVIDER.channel_ids(raw, {}, "") == ["1122334455667", "1234567890987654321"]
    template = (wa.fixtures / "pywa_template_status_update__approved.json").read_bytes()
    assert PROVIDER.channel_ids(template, {}, "") == ["102290129340398"]


@pytest.mark.parametrize("raw", [b"", b"not json", b"{broken", b"\xff\xfe\x00", b"[]", b"null", b"42", b'"str"',
                                 b"[" * 100000])
def test_channel_ids_bad_request_for_non_objects(raw):
    with pytest.raises(BadRequest):
        PROVIDER.channel_ids(raw, {}, "")


@pytest.mark.parametrize("raw", [b"{}", b'{"object":"whatsapp_business_account"}', b'{"entry":{}}',
                                 b'{"entry":[1,"x",null]}', b'{"entry":[{"changes":[1,{"value":7}]}]}',
                                 b'{"entry":[{"id":{"x":1},"changes":[{"value":{"metadata":[]}}]}]}'])
def test_channel_ids_odd_objects_never_raise(raw):
    assert PROVIDER.channel_ids(raw, {}, "") == []


def test_channel_ids_partial_shapes_give_what_they_can():
    raw = b'{"entry":[{"id":123,"changes":[{"value":{"metadata":{"phone_number_id":456}}}, "junk"]}, 5]}'
    assert PROVIDER.channel_ids(raw, {}, "") == ["456", "123"]


def test_batched_envelope_keeps_every_entry_change_and_item_in_order(wa):
    text = wa.load("pywa_message__text.json")
    failed = wa.load("pywa_message_status__failed.json")
    template = wa.load("pywa_template_status_update__approved.json")
    body = copy.deepcopy(text)
    body["entry"] += failed["entry"] + template["entry"]
    value = wa.value(body)
    value["messages"].append(dict(value["messages"][0], id="wamid.second", text={"body": "again"}))
    value["statuses"] = copy.deepcopy(wa.value(wa.load("pywa_message_status__delivered.json"))["statuses"])
    other = copy.deepcopy(wa.load("pywa_message__reaction.json")["entry"][0]["changes"][0])
    other["value"]["metadata"]["phone_number_id"] = "999000999"
    body["entry"][0]["changes"].append(other)

    events = wa.parse(body)
    summary = [(type(e).__name__, getattr(e, "provider_message_id", getattr(e, "topic", None))) for e in events]
    assert summary == [
        ("InboundMessage", "wamid.xyzxyz"),
        ("InboundMessage", "wamid.second"),
        ("StatusUpdate", "wamid.xyzxyz"),
        ("InboundMessage", "wamid.xyzxyz"),
        ("StatusUpdate", "wamid.xyzxyz"),
        ("Notice", "template_status"),
    ]
    assert events[1].text == "again" and events[2].status == "delivered"
    assert events[3].external_id == "999000999" and events[3].kind == "reaction"
    assert events[4].status == "failed" and events[5].external_id == "102290129340398"
    assert PROVIDER.channel_ids(wa.raw(body), {}, "") == [
        "1122334455667", "999000999", "1234567890987654321", "5467539754836534", "102290129340398"]


def test_one_entry_with_many_statuses_for_several_customers(wa):
    body = wa.load("pywa_message_status__sent.json")
    statuses = wa.value(body)["statuses"]
    for n in range(1, 5):
        statuses.append(dict(statuses[0], id=f"wamid.{n}", recipient_id=f"3460000000{n}"))
    events = wa.parse(body)
    assert [e.provider_message_id for e in events] == ["wamid.xyzxyz"] + [f"wamid.{n}" for n in range(1, 5)]
    assert [e.recipient for e in events][1:] == [f"+3460000000{n}" for n in range(1, 5)]
    assert all(isinstance(e, StatusUpdate) for e in events)


def test_non_ascii_text_from_escaped_wire_body(wa):
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    value["messages"][0]["text"]["body"] = "Olá, みどりいろ 👋 مرحبا"
    value["contacts"][0]["profile"]["name"] = "José Müller"
    raw = wa.raw(body)
    assert b"\\u307f" in raw and b"\\ud83d\\udc4b" in raw   # escaped as Meta sends it
    msg = wa.only(PROVIDER.parse(raw, {}), InboundMessage)
    assert msg.text == "Olá, みどりいろ 👋 مرحبا" and msg.sender_name == "José Müller"
    utf8 = json.dumps(body, ensure_ascii=False).encode("utf-8")
    assert wa.only(PROVIDER.parse(utf8, {}), InboundMessage).text == "Olá, みどりいろ 👋 مرحبا"


def test_non_ascii_captions_filenames_and_template_reasons(wa):
    doc = wa.load("pywa_message__document.json")
    wa.value(doc)["messages"][0]["document"].update(caption="Überweisung ✅", filename="factura_añ.pdf")
    media = wa.only(wa.parse(doc), InboundMessage).media[0]
    assert (media.caption, media.filename) == ("Überweisung ✅", "factura_añ.pdf")
    template = wa.load("pywa_template_status_update__rejected.json")
    wa.value(template)["rejection_info"]["reason"] = "テンプレート"
    assert wa.only(wa.parse(template), Notice).detail["rejection_info"]["reason"] == "テンプレート"


@pytest.mark.parametrize("raw, what", [
    (b"", "invalid-json"), (b"not json", "invalid-json"), (b"[]", "invalid-json"), (b"null", "invalid-json"),
    (b"{}", "envelope"), (b'{"object":"whatsapp_business_account"}', "envelope"), (b'{"entry":{}}', "envelope"),
    (b'{"entry":[]}', "envelope"), (b'{"entry":[1]}', "entry"), (b'{"entry":[{"changes":[]}]}', "entry"),
    (b'{"entry":[{"changes":[1]}]}', "change"),
    (b'{"entry":[{"changes":[{"field":"messages"}]}]}', "malformed:messages"),
    (b'{"entry":[{"changes":[{"field":"messages","value":{"messages":[]}}]}]}', "malformed:messages"),
    (b'{"entry":[{"changes":[{"field":"smb_message_echoes","value":{}}]}]}', "malformed:smb_message_echoes"),
    (b'{"entry":[{"changes":[{"field":["x"],"value":{}}]}]}', "field:['x']"),
])
def test_odd_bodies_never_raise(raw, what):
    assert PROVIDER.parse(raw, {}) == [Unsupported(what)]


@pytest.mark.parametrize("items, what", [
    ('"messages":[7]', "message:malformed"),
    ('"messages":{"id":"x"}', "message:malformed"),
    ('"statuses":["x"]', "status:malformed"),
    ('"messages":[{"type":"text","from":"1"}]', "message:no-id"),
    ('"messages":[{"id":"w","type":"text"}]', "message:no-sender"),
])
def test_odd_items_never_raise(items, what):
    raw = ('{"entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"2"},'
           + items + "}}]}]}").encode()
    assert PROVIDER.parse(raw, {}) == [Unsupported(what)]


def test_a_change_without_metadata_is_isolated_to_that_change(wa):
    body = wa.load("pywa_message__text.json")
    broken = copy.deepcopy(body["entry"][0]["changes"][0])
    del broken["value"]["metadata"]
    body["entry"][0]["changes"].insert(0, broken)
    events = wa.parse(body)
    assert events[0] == Unsupported("malformed:messages") and isinstance(events[1], InboundMessage)


def test_one_bad_message_or_status_does_not_lose_its_neighbours(wa):
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    good = value["messages"][0]
    value["messages"] = [{"type": "text", "from": "972987654321"}, good, "junk",
                         dict(good, id="wamid.2", timestamp="not a time", text="not an object"),
                         dict(good, id="wamid.3", contacts=None, type="contacts")]
    value["statuses"] = [{"id": "wamid.s", "status": "read", "recipient_id": "972987654321",
                          "timestamp": "1689380458", "errors": "junk", "conversation": None}, None]
    events = wa.parse(body)
    assert [type(e) for e in events] == [Unsupported, InboundMessage, Unsupported, InboundMessage,
                                         InboundMessage, StatusUpdate, Unsupported]
    assert events[0] == Unsupported("message:no-id") and events[2] == Unsupported("message:malformed")
    assert events[3].occurred_at is None and events[3].text == "[empty text]"
    assert events[4].text == "[contacts]"
    assert events[6] == Unsupported("status:malformed")


def test_an_item_that_breaks_a_converter_becomes_unsupported(wa, monkeypatch):
    from webhooks.whatsapp import messages

    def boom(msg):
        if msg.get("id") == "wamid.bad":
            raise RuntimeError("unforeseen shape")
        return "x"

    monkeypatch.setattr(messages, "render", boom)
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    value["messages"].insert(0, dict(value["messages"][0], id="wamid.bad"))
    events = wa.parse(body)
    assert events[0] == Unsupported("message:malformed") and events[1].text == "x"


def test_dedupe_key_and_send_without_token(wa):
    raw = (wa.fixtures / "pywa_template_status_update__approved.json").read_bytes()
    key = PROVIDER.dedupe_key(raw, {})
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    assert key == PROVIDER.dedupe_key(bytes(raw), {"X-Other": "1"})
    assert key != PROVIDER.dedupe_key(raw + b" ", {})
    message = OutboundMessage("m1", "+34600000001", "phone", "text", {"body": "hi"})
    result = PROVIDER.send(message, {"external_id": "1122334455667", "settings": {}}, {})
    assert isinstance(result, SendResult) and result.outcome == "failed" and result.channel_problem

"""Every shared Messenger fixture -> the events it must become. Pure; no database.

Several fixtures are excerpts of Meta's reference pages (one bare messaging event, or one
entry) rather than whole request bodies; the table says how each is wrapped into the live
envelope before parsing. The two Send API bodies are not webhooks and are left out.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.providers import InboundMessage, Notice, StatusUpdate, Unsupported
from webhooks.messenger import PROVIDER

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "messenger"
if not FIXTURES.is_dir():
    pytest.skip(f"shared Messenger fixtures not found at {FIXTURES}", allow_module_level=True)

URL = "https://gw.example/webhooks/messenger"
DOC_PAGE = "1234567890"

# file -> (shape, expected summaries). Shapes: "body" = a whole request body as Meta sends it;
# "entry" = one entry[] item; "event" = one messaging[] item.
TABLE = {
    "meta_doc_message_deliveries.json": ("event", [
        ("status", "delivered", "mid.1458668856218:ed81099e15d3f4f233"),
        ("status", "delivered", "watermark")]),
    "meta_doc_message_echoes_standby_template.json": ("body", [("outbound", "template")]),
    "meta_doc_message_reads.json": ("event", [("status", "read", "watermark")]),
    "meta_doc_messages_attachment_entry.json": ("entry", [("inbound", "attachment")]),
    "meta_doc_messages_reply_to.json": ("event", [("inbound", "text")]),
    "meta_doc_messages_text_quick_reply.json": ("event", [("inbound", "quick_reply")]),
    # A user_ref sender (no PSID) cannot be a thread message: kept as a Notice.
    "meta_doc_messaging_postbacks_test_format.json": ("body", [("notice", "messenger:postback")]),
    "mseri_wsAuthRequest.json": ("body", [("notice", "messenger:optin")]),
    "mseri_wsDeliveryRequest.json": ("body", [
        ("status", "delivered", "mid.1458668856218:ed81099e15d3f4f233"),
        ("status", "delivered", "watermark")]),
    "mseri_wsPostbackRequest.json": ("body", [("inbound", "postback")]),
    "mseri_wsStructuredMessageRequest.json": ("body", [("inbound", "image")]),
    "mseri_wsTextMessageRequest.json": ("body", [("inbound", "text")]),
}
NOT_WEBHOOKS = {"mseri_sendapi_errorResponse.json", "mseri_sendapi_textMessage_request.json"}


def summary(ev) -> tuple:
    if isinstance(ev, InboundMessage):
        return (ev.direction, ev.kind)
    if isinstance(ev, StatusUpdate):
        return ("status", ev.status, ev.provider_message_id or "watermark")
    if isinstance(ev, Notice):
        return ("notice", ev.topic)
    return ("unsupported", ev.what)


def as_request(name: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    shape = TABLE[name][0]
    if shape == "body":
        return raw
    item = json.loads(raw)
    entry = item if shape == "entry" else {"id": DOC_PAGE, "time": 1458668857000, "messaging": [item]}
    return json.dumps({"object": "page", "entry": [entry]}, separators=(",", ":")).encode("ascii")


def test_every_fixture_is_in_the_table():
    on_disk = {p.name for p in FIXTURES.glob("*.json")}
    assert on_disk, f"no *.json in {FIXTURES}"
    assert on_disk == set(TABLE) | NOT_WEBHOOKS, "a fixture was added or removed: update TABLE"


@pytest.mark.parametrize("name", sorted(TABLE), ids=lambda n: n.removesuffix(".json"))
def test_fixture_becomes_the_expected_events(name):
    raw = as_request(name)
    events = PROVIDER.parse(raw, {})
    assert [summary(e) for e in events] == TABLE[name][1]
    for ev in events:
        if isinstance(ev, InboundMessage):
            assert ev.sender_kind == "psid" and ev.sender and ev.external_id
            assert isinstance(ev.text, str) and ev.text
            assert ev.occurred_at is not None and ev.occurred_at.utcoffset().total_seconds() == 0
            assert ev.sender != ev.external_id    # never the page as the customer, echoes included
        if isinstance(ev, StatusUpdate):
            assert ev.recipient_kind == "psid" and ev.recipient
    assert PROVIDER.channel_ids(raw, {}, URL), "routing found no channel"


@pytest.mark.parametrize("name", sorted(n for n, (shape, _) in TABLE.items() if shape != "body"))
def test_bare_doc_excerpts_are_not_envelopes(name):
    # Meta never posts a bare event: as-is, it is reported rather than guessed at.
    events = PROVIDER.parse((FIXTURES / name).read_bytes(), {})
    assert events == [Unsupported("object:None")]


def test_echo_on_standby_fixture():
    [echo] = PROVIDER.parse(as_request("meta_doc_message_echoes_standby_template.json"), {})
    assert echo.direction == "outbound"
    assert echo.external_id == "<PAGE_ID>" and echo.sender == "<PSID>"
    assert echo.content["app_id"] == "<APPID>" and echo.content["standby"] is True
    assert echo.text == "[template]" and echo.media == ()
    assert echo.timestamp == "1570053170673"


def test_reply_to_and_quick_reply_fixtures():
    [reply] = PROVIDER.parse(as_request("meta_doc_messages_reply_to.json"), {})
    assert reply.reply_to == "m_1fTq8oLumEyIp3Q2MR-aY7IfLZDamVrALniheU"
    assert reply.text == "hello, world!" and reply.content["reply_to"]["is_self_reply"] is False
    [quick] = PROVIDER.parse(as_request("meta_doc_messages_text_quick_reply.json"), {})
    assert quick.content["quick_reply"] == {"payload": "<DEVELOPER_DEFINED_PAYLOAD>"}
    assert quick.text == "hello, world!"


def test_placeholder_attachment_type_is_kept_as_a_file():
    [msg] = PROVIDER.parse(as_request("meta_doc_messages_attachment_entry.json"), {})
    assert msg.external_id == "682498302938465"
    assert [(m.kind, m.url) for m in msg.media] == [("file", "<ATTACHMENT_URL>")]
    assert msg.content["attachments"][0]["type"] == "<image|video|audio|file>"


def test_legacy_fixtures():
    [text] = PROVIDER.parse(as_request("mseri_wsTextMessageRequest.json"), {})
    assert (text.external_id, text.sender, text.provider_message_id) == \
        ("111111", "USER_ID", "mid.1457764197618:41d102a3e1ae206a38")
    assert "seq" not in text.content
    [image] = PROVIDER.parse(as_request("mseri_wsStructuredMessageRequest.json"), {})
    assert [(m.kind, m.url) for m in image.media] == [("image", "IMAGE_URL")] and image.text == "[image]"
    [postback] = PROVIDER.parse(as_request("mseri_wsPostbackRequest.json"), {})
    assert postback.provider_message_id == "postback:USER_ID:1458692752478"
    assert postback.text == "USER_DEFINED_PAYLOAD" and postback.content == {"payload": "USER_DEFINED_PAYLOAD"}
    [optin] = PROVIDER.parse(as_request("mseri_wsAuthRequest.json"), {})
    assert optin.subject == ("psid", "USER_ID") and optin.detail["optin"] == {"ref": "PASS_THROUGH_PARAM"}
    # The delivery event has no timestamp of its own: the entry's time stands in.
    statuses = PROVIDER.parse(as_request("mseri_wsDeliveryRequest.json"), {})
    assert all(s.timestamp is None and s.occurred_at.year == 2016 for s in statuses)
    assert statuses[1].watermark.isoformat() == "2016-03-22T17:47:36.253000+00:00"


def test_dashboard_test_postback_keeps_everything():
    raw = as_request("meta_doc_messaging_postbacks_test_format.json")
    [notice] = PROVIDER.parse(raw, {})
    assert notice.external_id == "PAGE-ID" and notice.subject is None
    assert notice.detail["postback"]["payload"] == "USER-DEFINED-PAYLOAD"
    assert notice.detail["sender"] == {"user_ref": "USER-REF-ID"}
    # "1527459824" is in seconds (a string), unlike live events
    assert notice.occurred_at.isoformat() == "2018-05-27T22:23:44+00:00"
    assert PROVIDER.channel_ids(raw, {}, URL) == ["PAGE-ID"]

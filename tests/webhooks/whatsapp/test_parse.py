"""WhatsApp Cloud API parse: every shared fixture, plus explicit shapes. Pure; no database."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gateway.providers import InboundMessage, SendResult, StatusUpdate, Unsupported
from webhooks.whatsapp import PROVIDER
from webhooks.whatsapp import parse as wa_parse

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "whatsapp"
if not FIXTURES.is_dir():
    pytest.skip(f"shared WhatsApp fixtures not found at {FIXTURES}", allow_module_level=True)

FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def raw_of(body: dict) -> bytes:
    # Meta's wire form: compact, non-ASCII escaped as \uXXXX.
    return json.dumps(body, separators=(",", ":")).encode("ascii")


def parse(body: dict | bytes):
    return PROVIDER.parse(body if isinstance(body, bytes) else raw_of(body), {})


def only(events, cls):
    found = [e for e in events if isinstance(e, cls)]
    assert len(found) == 1, events
    return found[0]


def test_fixture_folder_is_not_empty():
    assert FIXTURE_FILES, f"no *.json in {FIXTURES}"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_every_fixture_parses_and_every_item_is_represented(path: Path):
    raw = path.read_bytes()
    body = json.loads(raw)
    events = PROVIDER.parse(raw, {})
    assert events, "parse returned nothing"
    assert all(isinstance(e, (InboundMessage, StatusUpdate, Unsupported)) for e in events)

    n_messages = n_statuses = 0
    message_ids, status_ids = [], []
    for entry in body["entry"]:
        for change in entry["changes"]:
            if change.get("field") == "messages":
                n_messages += len(change["value"].get("messages", []))
                n_statuses += len(change["value"].get("statuses", []))
                message_ids += [m.get("id") for m in change["value"].get("messages", [])]
                status_ids += [s.get("id") for s in change["value"].get("statuses", [])]
            else:
                assert Unsupported(f"field:{change['field']}") in events
    inbound = [e for e in events if isinstance(e, InboundMessage)]
    statuses = [e for e in events if isinstance(e, StatusUpdate)]
    odd_messages = [e for e in events if isinstance(e, Unsupported) and e.what.startswith("message:")]
    odd_statuses = [e for e in events if isinstance(e, Unsupported) and e.what.startswith("status:")]
    assert len(inbound) + len(odd_messages) == n_messages
    assert len(statuses) + len(odd_statuses) == n_statuses
    assert all(m.provider_message_id in message_ids for m in inbound)
    assert all(s.provider_message_id in status_ids for s in statuses)
    for m in inbound:
        assert m.sender_kind in ("phone", "bsuid")
        if m.sender_kind == "phone":
            assert m.sender.startswith("+") and m.sender[1:].isdigit()
        assert isinstance(m.text, str) and m.text
        assert m.timestamp is None or isinstance(m.timestamp, str)
    # channel routing always finds something for a well-formed body
    assert PROVIDER.channel_ids(raw, {}, "https://gw.example/webhooks/whatsapp")


def test_text_message():
    body = load("pywa_message__text.json")
    msg = only(parse(body), InboundMessage)
    assert msg.external_id == "1122334455667"
    assert msg.sender == "+972987654321" and msg.sender_kind == "phone"
    assert msg.provider_message_id == "wamid.xyzxyz"
    assert msg.kind == "text" and msg.text == "Body Text"
    assert msg.sender_name == "Test Name"
    assert msg.timestamp == "1697043223" and isinstance(msg.timestamp, str)
    assert msg.extra["text"] == {"body": "Body Text"}
    assert msg.extra["user_id"] == "US.13491208655302741918"
    assert msg.extra["parent_user_id"] == "US.ENT.11815799212886844830"


def test_image_with_and_without_caption():
    body = load("pywa_message__image.json")
    plain = only(parse(body), InboundMessage)
    assert plain.kind == "image" and plain.text == "[image]"
    assert plain.extra["image"]["id"] == "65463453"
    body["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["caption"] = "Look at this"
    captioned = only(parse(body), InboundMessage)
    assert captioned.text == "Look at this"
    assert captioned.extra["image"]["mime_type"] == "image/jpeg"


def test_document_voice_and_sticker_renditions():
    assert only(parse(load("pywa_message__document.json")), InboundMessage).text == "caption"
    doc = load("pywa_message__document.json")
    del doc["entry"][0]["changes"][0]["value"]["messages"][0]["document"]["caption"]
    assert only(parse(doc), InboundMessage).text == "filename.pdf"
    assert only(parse(load("pywa_message__static_sticker.json")), InboundMessage).text == "[sticker]"
    assert only(parse(load("pywa_message__audio.json")), InboundMessage).text == "[audio]"


def test_locations():
    chosen = only(parse(load("pywa_message__chosen_location.json")), InboundMessage)
    assert chosen.kind == "location"
    assert chosen.text == "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025"
    assert chosen.extra["location"]["latitude"] == 37.4611978
    assert chosen.extra["context"] == {"forwarded": True}
    current = only(parse(load("pywa_message__current_location.json")), InboundMessage)
    assert current.text == "12.25089,43.90539"


def test_interactive_replies():
    listed = only(parse(load("pywa_callback_selection__callback.json")), InboundMessage)
    assert listed.kind == "interactive" and listed.text == "title"
    assert listed.extra["interactive"]["list_reply"]["id"] == "callback_data"
    assert listed.extra["context"]["id"] == "wamid.xyzxyz"
    button = only(parse(load("pywa_callback_button__button.json")), InboundMessage)
    assert button.kind == "interactive" and button.extra["interactive"]["type"] == "button_reply"
    flow = only(parse(load("pywa_flow_completion__completion.json")), InboundMessage)
    assert flow.text == "[form reply]"
    assert "flow_token" in flow.extra["interactive"]["nfm_reply"]["response_json"]
    template_button = only(parse(load("pywa_callback_button__quick_reply.json")), InboundMessage)
    assert template_button.kind == "button" and template_button.text == "title"


def test_reaction_and_its_removal():
    reaction = only(parse(load("pywa_message__reaction.json")), InboundMessage)
    assert reaction.kind == "reaction" and reaction.text == "😮"
    assert reaction.extra["reaction"]["message_id"] == "wamid.yzxyzx="
    for name in ("pywa_message__unreaction_empty.json", "pywa_message__unreaction_no_emoji.json"):
        removed = only(parse(load(name)), InboundMessage)
        assert removed.kind == "reaction" and removed.text == "[reaction removed]"


def test_contacts_order_system_unsupported_renditions():
    assert only(parse(load("pywa_message__contacts.json")), InboundMessage).text == \
        "Chandler Bing, Monica, Rachel Green"
    assert only(parse(load("pywa_message__order.json")), InboundMessage).text == "[order: 3 items]"
    system = only(parse(load("pywa_system__phone_number_change.json")), InboundMessage)
    assert system.kind == "system" and system.text.startswith("User A changed from")
    assert system.extra["system"]["wa_id"] == "972912345678"
    odd = only(parse(load("pywa_message__unsupported.json")), InboundMessage)
    assert odd.kind == "unsupported" and odd.text == "[unsupported message]"
    assert odd.extra["errors"][0]["code"] == 131051


def test_referral_kept_in_extra():
    msg = only(parse(load("pywa_message__referral.json")), InboundMessage)
    assert msg.text == "BODY" and msg.extra["referral"]["ctwa_clid"] == "CTWA_CLID"


def test_value_level_errors_are_unsupported_but_message_is_kept():
    events = parse(load("pywa_message__interactive_message_with_err.json"))
    assert Unsupported("errors") in events
    msg = only(events, InboundMessage)
    assert msg.text == "[unsupported message]"


def test_failed_status_with_code_and_reason():
    st = only(parse(load("pywa_message_status__failed.json")), StatusUpdate)
    assert st.status == "failed" and st.external_id == "1122334455667"
    assert st.provider_message_id == "wamid.xyzxyz" and st.timestamp == "1689380458"
    assert st.error_code == "130472"
    assert st.error_reason == ("User's number is part of an experiment: Failed to send message because "
                               "this user's phone number is part of an experiment")


def test_status_tracker_and_unmodelled_status():
    st = only(parse(load("pywa_message_status__with_tracker.json")), StatusUpdate)
    assert st.status == "sent" and st.callback_data == "some data" and st.error_code is None
    assert parse(load("pywa_message_status__played.json")) == [Unsupported("status:played")]
    body = load("pywa_message_status__read.json")
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "deleted"
    assert parse(body) == [Unsupported("status:deleted")]


def test_batched_envelope_keeps_every_entry_change_and_item_in_order():
    text = load("pywa_message__text.json")
    failed = load("pywa_message_status__failed.json")
    template = load("pywa_template_status_update__approved.json")
    body = copy.deepcopy(text)
    body["entry"] += failed["entry"] + template["entry"]
    # a second message in the same change, and a second change in the first entry
    value = body["entry"][0]["changes"][0]["value"]
    second = dict(value["messages"][0], id="wamid.second", text={"body": "again"})
    value["messages"].append(second)
    other = copy.deepcopy(load("pywa_message__reaction.json")["entry"][0]["changes"][0])
    other["value"]["metadata"]["phone_number_id"] = "999000999"
    body["entry"][0]["changes"].append(other)

    events = parse(body)
    kinds = [(type(e).__name__, getattr(e, "provider_message_id", getattr(e, "what", None))) for e in events]
    assert kinds == [
        ("InboundMessage", "wamid.xyzxyz"),
        ("InboundMessage", "wamid.second"),
        ("InboundMessage", "wamid.xyzxyz"),
        ("StatusUpdate", "wamid.xyzxyz"),
        ("Unsupported", "field:message_template_status_update"),
    ]
    assert events[2].external_id == "999000999" and events[2].kind == "reaction"
    raw = raw_of(body)
    assert PROVIDER.channel_ids(raw, {}, "") == ["1122334455667", "999000999"]


def test_non_ascii_text_from_escaped_wire_body():
    body = load("pywa_message__text.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"][0]["text"]["body"] = "Olá, みどりいろ 👋"
    value["contacts"][0]["profile"]["name"] = "José Müller"
    raw = raw_of(body)
    assert b"\\u307f" in raw and b"\\ud83d\\udc4b" in raw   # escaped as Meta sends it
    msg = only(PROVIDER.parse(raw, {}), InboundMessage)
    assert msg.text == "Olá, みどりいろ 👋" and msg.sender_name == "José Müller"
    # raw UTF-8 bodies work too
    assert only(PROVIDER.parse(json.dumps(body, ensure_ascii=False).encode("utf-8"), {}), InboundMessage).text \
        == "Olá, みどりいろ 👋"


def test_bsuid_only_sender():
    body = load("pywa_message__text.json")
    value = body["entry"][0]["changes"][0]["value"]
    del value["messages"][0]["from"]
    value["messages"][0]["from_user_id"] = "US.13491208655302741918"
    del value["contacts"][0]["wa_id"]
    msg = only(parse(body), InboundMessage)
    assert msg.sender == "US.13491208655302741918" and msg.sender_kind == "bsuid"
    assert msg.sender_name == "Test Name"


def test_unknown_and_not_routed_fields_become_unsupported():
    body = load("pywa_message__text.json")
    body["entry"][0]["changes"][0]["field"] = "some_future_field"
    assert parse(body) == [Unsupported("field:some_future_field")]
    assert "account_update" in wa_parse.NOT_ROUTED_YET
    assert parse(load("pywa_account_update__account_deleted.json")) == [Unsupported("field:account_update")]
    assert set(wa_parse.HANDLERS) == {"messages"}


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"[]", b"null", b'{"object":"whatsapp_business_account"}', b'{"entry":{}}',
    b'{"entry":[1]}', b'{"entry":[{"changes":[1, {"field":"messages"}]}]}',
    b'{"entry":[{"changes":[{"field":"messages","value":{"messages":[]}}]}]}',
    b'{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"messages":[7]}}]}]}',
])
def test_odd_shapes_never_raise(raw):
    events = PROVIDER.parse(raw, {})
    assert events and all(isinstance(e, Unsupported) for e in events)
    assert isinstance(PROVIDER.channel_ids(raw, {}, ""), list)


def test_keyerror_in_a_change_is_isolated_to_that_change():
    good = load("pywa_message__text.json")
    broken = copy.deepcopy(good["entry"][0]["changes"][0])
    del broken["value"]["metadata"]          # handler raises KeyError for this change only
    good["entry"][0]["changes"].insert(0, broken)
    events = parse(good)
    assert events[0] == Unsupported("malformed:messages")
    assert isinstance(events[1], InboundMessage)


def test_one_bad_message_does_not_lose_its_neighbours():
    body = load("pywa_message__text.json")
    msgs = body["entry"][0]["changes"][0]["value"]["messages"]
    msgs.insert(0, {"type": "text", "from": "972987654321"})   # no id
    events = parse(body)
    assert events[0] == Unsupported("message:no-id") and isinstance(events[1], InboundMessage)


def test_channel_ids_fall_back_to_waba_id_and_dedupe_key():
    raw = (FIXTURES / "pywa_template_status_update__approved.json").read_bytes()
    waba = json.loads(raw)["entry"][0]["id"]
    assert PROVIDER.channel_ids(raw, {}, "") == [waba]
    assert PROVIDER.channel_ids(b"{broken", {}, "") == []
    key = PROVIDER.dedupe_key(raw, {})
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    assert key == PROVIDER.dedupe_key(bytes(raw), {"X-Other": "1"})
    assert key != PROVIDER.dedupe_key(raw + b" ", {})


def test_send_is_not_built_yet():
    result = PROVIDER.send({"to": "+34600000001", "text": "hi"}, {})
    assert isinstance(result, SendResult) and result.outcome == "failed"
    assert PROVIDER.name == "whatsapp"

"""Twilio routing, parsing and dedupe keys: every shared fixture, plus explicit shapes. Pure; no database."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from urllib.parse import urlencode

import pytest

from gateway.providers import BadRequest, InboundMessage, Media, Notice, OutboundMessage, SendResult, StatusUpdate, Unsupported
from webhooks.twilio import PROVIDER
from webhooks.twilio import statuses as tw_statuses

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "twilio"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def form(params) -> bytes:
    return urlencode(list(params.items()) if isinstance(params, dict) else list(params)).encode("ascii")


def one(params, headers=None):
    raw = params if isinstance(params, bytes) else form(params)
    events = PROVIDER.parse(raw, {} if headers is None else headers)
    assert len(events) == 1, events
    return events[0]


SMS = {
    "MessageSid": "SM11111111111111111111111111111111", "SmsSid": "SM11111111111111111111111111111111",
    "SmsMessageSid": "SM11111111111111111111111111111111", "AccountSid": "AC00000000000000000000000000000000",
    "From": "+15557654321", "To": "+14155238886", "Body": "Hi there", "NumMedia": "0", "NumSegments": "1",
    "SmsStatus": "received", "ApiVersion": "2010-04-01", "FromCity": "", "FromCountry": "US",
}
WA = {
    "MessageSid": "SM22222222222222222222222222222222", "AccountSid": "AC00000000000000000000000000000000",
    "From": "whatsapp:+27456897512", "To": "whatsapp:+14155238886", "Body": "", "NumMedia": "0",
    "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01", "ProfileName": "Chris Smit",
    "WaId": "27456897512", "ReferralNumMedia": "0",
}
STATUS = {
    "MessageSid": "SM33333333333333333333333333333333", "SmsSid": "SM33333333333333333333333333333333",
    "AccountSid": "AC00000000000000000000000000000000", "From": "+14155238886", "To": "+15557654321",
    "ApiVersion": "2010-04-01",
}


def status_of(word: str, **extra):
    return {**STATUS, "MessageStatus": word, "SmsStatus": word, **extra}


# --- the shared fixtures ----------------------------------------------------------------------

EXPECTED = {
    "inbound_sms_text_allbot_fixture": dict(
        type=InboundMessage, external_id="+14158818614", sender="+385912555174",
        provider_message_id="SMc6065e56160e05adb994aae94560a913", kind="text", text="test", media=0,
        channel="sms", channel_ids=["+14158818614", "ACa25b18aa620f194a8f2f3cf76230fa70"], dedupe="SMc6065e56160e05adb994aae94560a913:received"),
    "inbound_whatsapp_text_fixture": dict(
        type=InboundMessage, external_id="+14155238886", sender="+27456897512", provider_message_id="BBBBBBBBBB",
        kind="text", text="Dobroye utro", media=0, channel="whatsapp", sender_name="Chris Smit",
        channel_ids=["+14155238886", "AAAAAAAAAAAAA"], dedupe="BBBBBBBBBB:received"),
    # NumMedia says 0 but MediaUrl0 is there (a fixture bug per INDEX.md): the attachment is still kept.
    "inbound_whatsapp_image_fixture": dict(
        type=InboundMessage, external_id="+14155238886", sender="+27456897512", provider_message_id="BBBBBBBBBB",
        kind="image", text="Dobroye utro", media=1, channel="whatsapp", sender_name="Chris Smit",
        channel_ids=["+14155238886", "AAAAAAAAAAAAA"], dedupe="BBBBBBBBBB:received"),
    # The status fixtures are subsets without From/To: nothing to route by, but still readable.
    "status_callback_undelivered_30003_fixture": dict(
        type=StatusUpdate, external_id="", provider_message_id="SM123", status="failed", error_code="30003",
        error_reason="Unreachable destination handset", channel_ids=[], dedupe="SM123:undelivered"),
    "status_callback_undelivered_30006_fixture": dict(
        type=StatusUpdate, external_id="", provider_message_id="SM555", status="failed", error_code="30006",
        error_reason=tw_statuses.ERROR_REASONS["30006"], channel_ids=[], dedupe="SM555:undelivered"),
}


def test_fixture_folder_is_there_and_every_fixture_has_an_expectation():
    assert FIXTURE_FILES, f"no *.json in {FIXTURES}"
    assert {p.stem for p in FIXTURE_FILES} == set(EXPECTED)


def check(event, want: dict):
    assert isinstance(event, want["type"]), event
    for name in ("external_id", "sender", "provider_message_id", "kind", "text", "sender_name", "status",
                 "error_code", "error_reason"):
        if name in want:
            assert getattr(event, name) == want[name], name
    if "media" in want:
        assert len(event.media) == want["media"]
    if "channel" in want:
        assert event.content["channel"] == want["channel"]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_every_fixture_as_a_form(path: Path):
    want = EXPECTED[path.stem]
    raw = form(json.loads(path.read_text(encoding="utf-8")))
    check(one(raw), want)
    assert PROVIDER.channel_ids(raw, FORM, "https://gw.example/webhooks/twilio") == want["channel_ids"]
    assert PROVIDER.dedupe_key(raw, FORM) == want["dedupe"]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_every_fixture_as_a_json_body(path: Path):
    raw = path.read_bytes()
    want = EXPECTED[path.stem]
    check(one(raw), want)                                   # worker: no headers, sniffed
    check(one(raw, {"Content-Type": "application/json"}), want)
    assert PROVIDER.channel_ids(raw, {"Content-Type": "application/json"}, "") == want["channel_ids"]
    assert PROVIDER.dedupe_key(raw, {}) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_sms_fixture_content():
    ev = one(form(load("inbound_sms_text_allbot_fixture.json")))
    assert ev.sender_kind == "phone" and ev.media == () and ev.reply_to is None and ev.sender_name is None
    assert ev.content == {"channel": "sms", "body": "test", "num_segments": 1, "num_media": 0,
                          "FromCountry": "HR", "ToCity": "IGNACIO", "ToState": "CA", "ToZip": "94949",
                          "ToCountry": "US"}


def test_whatsapp_image_fixture_media():
    ev = one(form(load("inbound_whatsapp_image_fixture.json")))
    assert ev.media == (Media(kind="image", url="http://example.com/media", mime_type="image/png"),)
    assert ev.content["WaId"] == "27456897512"


# --- inbound messages -------------------------------------------------------------------------

def test_sms_without_media():
    ev = one(SMS)
    assert isinstance(ev, InboundMessage)
    assert (ev.external_id, ev.sender, ev.sender_kind, ev.kind, ev.text) == \
        ("+14155238886", "+15557654321", "phone", "text", "Hi there")
    assert ev.provider_message_id == SMS["MessageSid"]
    assert ev.media == () and ev.content["num_media"] == 0 and ev.content["channel"] == "sms"
    assert "FromCity" not in ev.content and ev.content["FromCountry"] == "US"


MEDIA_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/"


def test_mms_with_two_media():
    ev = one({**SMS, "Body": "", "NumMedia": "2",
              "MediaContentType0": "image/jpeg", "MediaUrl0": MEDIA_URL + "ME1",
              "MediaContentType1": "application/pdf", "MediaUrl1": MEDIA_URL + "ME2"})
    assert ev.kind == "image"
    assert ev.text == "[image] [document]"
    assert ev.media == (
        Media(kind="image", url=MEDIA_URL + "ME1", mime_type="image/jpeg"),
        Media(kind="document", url=MEDIA_URL + "ME2", mime_type="application/pdf"),
    )
    assert ev.content["num_media"] == 2


@pytest.mark.parametrize("mime, kind", [
    ("image/gif", "image"), ("video/mp4", "video"), ("audio/ogg", "audio"), ("AUDIO/AMR", "audio"),
    ("text/vcard", "document"), ("application/octet-stream", "document"), (None, "document"),
])
def test_media_kind_from_content_type(mime, kind):
    params = {**SMS, "Body": "caption", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m"}
    if mime:
        params["MediaContentType0"] = mime
    ev = one(params)
    assert ev.kind == kind and ev.media[0].kind == kind and ev.text == "caption"


def test_num_media_larger_than_the_urls_given_and_hostile_values():
    assert one({**SMS, "NumMedia": "3", "MediaUrl0": "https://x/0"}).media == (Media(kind="document", url="https://x/0"),)
    assert one({**SMS, "NumMedia": "99999999"}).media == ()
    assert one({**SMS, "NumMedia": "-1"}).media == ()
    assert one({**SMS, "NumMedia": "many"}).media == ()


def test_whatsapp_text_with_profile_name():
    ev = one({**WA, "Body": "Hello"})
    assert (ev.sender, ev.external_id, ev.sender_name, ev.kind, ev.text) == \
        ("+27456897512", "+14155238886", "Chris Smit", "text", "Hello")
    assert ev.content["channel"] == "whatsapp" and ev.content["WaId"] == "27456897512"


def test_whatsapp_button_reply():
    ev = one({**WA, "Body": "Yes please", "ButtonText": "Yes please", "ButtonPayload": "confirm_42",
              "MessageType": "button", "OriginalRepliedMessageSid": "MM99", "OriginalRepliedMessageSender": "whatsapp:+14155238886"})
    assert ev.kind == "button" and ev.text == "Yes please" and ev.reply_to == "MM99"
    assert ev.content["ButtonPayload"] == "confirm_42" and ev.content["ButtonText"] == "Yes please"
    assert one({**WA, "ButtonPayload": "confirm_42"}).text == "confirm_42"


def test_whatsapp_location():
    ev = one({**WA, "Latitude": "45.8150", "Longitude": "15.9819", "Address": "Trg bana Jelačića",
              "Label": "Main square", "MessageType": "location"})
    assert ev.kind == "location"
    assert ev.text == "Main square, Trg bana Jelačića"
    assert {k: ev.content[k] for k in ("Latitude", "Longitude", "Address", "Label")} == \
        {"Latitude": "45.8150", "Longitude": "15.9819", "Address": "Trg bana Jelačića", "Label": "Main square"}
    assert one({**WA, "Latitude": "1.5", "Longitude": "-2.25"}).text == "1.5,-2.25"


@pytest.mark.parametrize("message_type, expected", [
    ("sticker", "sticker"), ("interactive", "interactive"), ("reaction", "reaction"), ("text", "text"),
    ("IMAGE", "image"), ("not a word!", "text"),
])
def test_whatsapp_message_type_wins_when_more_specific(message_type, expected):
    assert one({**WA, "MessageType": message_type}).kind == expected


def test_whatsapp_sticker_media_and_rendition():
    ev = one({**WA, "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/s", "MediaContentType0": "image/webp",
              "MessageType": "sticker"})
    assert ev.kind == "sticker" and ev.media[0].kind == "image" and ev.text == "[image]"
    assert one({**WA, "MessageType": "reaction"}).text == "[reaction]"


def test_whatsapp_extras_forwarded_referral_channel_metadata():
    ev = one({**WA, "Body": "From the ad", "Forwarded": "true", "FrequentlyForwarded": "false",
              "ReferralBody": "Spring sale", "ReferralSourceUrl": "https://fb.me/x", "ReferralSourceType": "ad",
              "ReferralCtwaClid": "ARA123", "ReferralHeadline": "",
              "ChannelMetadata": '{"type":"whatsapp","data":{"context":{"ProfileName":"Chris"}}}'})
    c = ev.content
    assert c["Forwarded"] == "true" and c["FrequentlyForwarded"] == "false"
    assert c["ReferralBody"] == "Spring sale" and c["ReferralSourceUrl"] == "https://fb.me/x"
    assert c["ReferralCtwaClid"] == "ARA123" and "ReferralHeadline" not in c
    assert c["ChannelMetadata"] == {"type": "whatsapp", "data": {"context": {"ProfileName": "Chris"}}}
    assert one({**WA, "ChannelMetadata": "{oops"}).content["ChannelMetadata"] == "{oops"


def test_messaging_service_sid_is_the_external_id_and_first_candidate():
    params = {**SMS, "MessagingServiceSid": "MG0123"}
    assert one(params).external_id == "MG0123"
    assert PROVIDER.channel_ids(form(params), FORM, "") == ["MG0123", "+14155238886", "AC00000000000000000000000000000000"]


def test_no_status_at_all_is_an_inbound_message():
    params = {k: v for k, v in SMS.items() if k != "SmsStatus"}
    assert isinstance(one(params), InboundMessage)
    assert PROVIDER.channel_ids(form(params), FORM, "") == ["+14155238886", "AC00000000000000000000000000000000"]
    assert PROVIDER.dedupe_key(form(params), FORM) == f"{SMS['MessageSid']}:received"


def test_non_ascii_bodies():
    text = "Добро јутро! Što ima? 👋🏽 ☕"
    ev = one({**SMS, "Body": text})
    assert ev.text == text and ev.content["body"] == text
    # UTF-8 left unescaped in the form decodes the same
    raw = form({k: v for k, v in SMS.items() if k != "Body"}) + "&Body=Добро+јутро".encode("utf-8")
    assert one(raw).text == "Добро јутро"


def test_body_whitespace_is_kept():
    assert one({**SMS, "Body": "  two  spaces \n"}).text == "  two  spaces \n"


@pytest.mark.parametrize("body, expected", [
    ("STOP", "STOP"), (" stop ", "STOP"), ("Unsubscribe", "STOP"), ("start", "START"), ("UNSTOP", "START"),
    ("help", "HELP"), ("stop please", None), ("hello", None),
])
def test_default_opt_out_keywords_on_sms(body, expected):
    assert one({**SMS, "Body": body}).content.get("opt_out") == expected


def test_opt_out_type_from_advanced_opt_out_and_not_guessed_on_whatsapp():
    ev = one({**SMS, "Body": "ARRET", "OptOutType": "STOP"})
    assert ev.content["opt_out"] == "STOP" and ev.content["OptOutType"] == "STOP"
    assert "opt_out" not in one({**WA, "Body": "STOP"}).content


@pytest.mark.parametrize("params, what", [
    ({k: v for k, v in SMS.items() if k not in ("MessageSid", "SmsSid", "SmsMessageSid")}, "message:no-MessageSid"),
    ({k: v for k, v in SMS.items() if k != "From"}, "message:no-From"),
    ({**SMS, "From": "whatsapp:"}, "message:no-From"),
    ({k: v for k, v in SMS.items() if k != "To"}, "message:no-To"),
    ({k: v for k, v in status_of("sent").items() if k not in ("MessageSid", "SmsSid")}, "status:no-MessageSid"),
])
def test_unreadable_requests_are_unsupported(params, what):
    assert one(params) == Unsupported(what)


def test_legacy_sid_names_are_enough():
    params = {k: v for k, v in SMS.items() if k not in ("MessageSid", "SmsMessageSid")}
    assert one(params).provider_message_id == SMS["SmsSid"]


# --- status callbacks -------------------------------------------------------------------------

@pytest.mark.parametrize("word, status", [
    ("accepted", "sending"), ("queued", "sending"), ("scheduled", "sending"), ("sending", "sending"),
    ("sent", "sent"), ("delivered", "delivered"), ("read", "read"),
    ("undelivered", "failed"), ("failed", "failed"), ("canceled", "failed"),
])
def test_each_status_word(word, status):
    ev = one(status_of(word))
    assert isinstance(ev, StatusUpdate)
    assert (ev.status, ev.provider_message_id, ev.external_id) == (status, STATUS["MessageSid"], "+14155238886")
    assert (ev.recipient, ev.recipient_kind) == ("+15557654321", "phone")
    assert ev.detail == {"provider_status": word, "raw_dlr_done_date": None, "channel": "sms"}
    if status != "failed":
        assert ev.error_code is None and ev.error_reason is None


def test_canceled_has_a_reason():
    assert one(status_of("canceled")).error_reason == "canceled before sending"


@pytest.mark.parametrize("code", sorted(tw_statuses.ERROR_REASONS))
def test_common_error_codes_have_a_built_in_reason(code):
    ev = one(status_of("undelivered", ErrorCode=code))
    assert ev.error_code == code and ev.error_reason == tw_statuses.ERROR_REASONS[code]


def test_undelivered_30003_and_30006_with_reasons():
    ev = one(status_of("undelivered", ErrorCode="30003", ErrorMessage="Unreachable destination handset",
                       RawDlrDoneDate="2511231405"))
    assert (ev.status, ev.error_code, ev.error_reason) == ("failed", "30003", "Unreachable destination handset")
    assert ev.detail["raw_dlr_done_date"] == "2511231405" and ev.occurred_at is None
    ev = one(status_of("undelivered", ErrorCode="30006"))
    assert ev.error_reason == "landline or unreachable carrier"


def test_unknown_error_code_points_at_twilio_docs():
    ev = one(status_of("failed", ErrorCode="63016"))
    assert ev.error_reason == "Twilio error 63016 (https://www.twilio.com/docs/api/errors/63016)"
    assert one(status_of("failed")).error_reason is None


def test_whatsapp_status_and_messaging_service_routing():
    params = status_of("read", From="whatsapp:+14155238886", To="whatsapp:+27456897512",
                       MessagingServiceSid="MG77", ChannelPrefix="whatsapp")
    ev = one(params)
    assert (ev.status, ev.external_id, ev.recipient) == ("read", "MG77", "+27456897512")
    assert ev.detail["channel"] == "whatsapp"
    assert PROVIDER.channel_ids(form(params), FORM, "") == ["MG77", "+14155238886", "AC00000000000000000000000000000000"]


def test_status_callback_routes_by_from_not_to():
    assert PROVIDER.channel_ids(form(status_of("delivered")), FORM, "") == ["+14155238886", "AC00000000000000000000000000000000"]


def test_unknown_status_word_is_a_notice():
    ev = one(status_of("Receiving"))
    assert isinstance(ev, Notice)
    assert ev.topic == "twilio:status:receiving" and ev.external_id == "+14155238886"
    assert ev.detail["provider_status"] == "receiving" and ev.subject == ("phone", "+15557654321")
    assert one(status_of("we<ird> word")).topic == "twilio:status:we_ird__word"


# --- bodies that are not Twilio's -------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"Body=\xff\xfe", b"Body=%FF%FE", b"\xc3\x28"])
def test_invalid_utf8_is_a_bad_request_for_routing_and_unsupported_for_parse(raw):
    with pytest.raises(BadRequest):
        PROVIDER.channel_ids(raw, FORM, "")
    assert PROVIDER.parse(raw, {}) == [Unsupported("undecodable-body")]
    assert PROVIDER.dedupe_key(raw, FORM) == "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": 1', b"\xff{}"])
def test_invalid_json_is_a_bad_request(raw):
    with pytest.raises(BadRequest):
        PROVIDER.channel_ids(raw, {"Content-Type": "application/json; charset=utf-8"}, "")
    assert PROVIDER.parse(raw, {"Content-Type": "application/json"}) == [Unsupported("undecodable-body")]


def test_json_that_is_not_an_object():
    assert PROVIDER.channel_ids(b"[1, 2]", {"Content-Type": "application/json"}, "") == []
    assert PROVIDER.parse(b"[1, 2]", {}) == [Unsupported("json:not-an-object")]


@pytest.mark.parametrize("raw", [b"", b"garbage", b"a=b&&c", b"=&=&", b"To=whatsapp%3A"])
def test_odd_but_decodable_forms_route_nowhere_without_raising(raw):
    assert PROVIDER.channel_ids(raw, FORM, "") == []


def test_empty_body_is_unsupported():
    assert PROVIDER.parse(b"", {}) == [Unsupported("empty-body")]


def test_parse_never_raises_on_random_bytes():
    rng = random.Random(7)
    alphabet = b"=&%+{}[]\":,0123456789ABCDEFabcdefMediaUrlNumFromToBodySid \xff\xc3\x80"
    for _ in range(500):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        events = PROVIDER.parse(raw, {})
        assert events and all(isinstance(e, (InboundMessage, StatusUpdate, Notice, Unsupported)) for e in events)
        try:
            PROVIDER.channel_ids(raw, {}, "")
        except BadRequest:
            pass


# --- dedupe keys ------------------------------------------------------------------------------

def test_dedupe_keys():
    sid = STATUS["MessageSid"]
    keys = {word: PROVIDER.dedupe_key(form(status_of(word)), FORM) for word in ("sent", "delivered", "read")}
    assert keys == {"sent": f"{sid}:sent", "delivered": f"{sid}:delivered", "read": f"{sid}:read"}
    # the same callback redelivered (even with parameters in another order) is the same key
    again = form(dict(reversed(list(status_of("delivered").items()))))
    assert PROVIDER.dedupe_key(again, FORM) == keys["delivered"]
    assert PROVIDER.dedupe_key(form(SMS), FORM) == f"{SMS['MessageSid']}:received"
    legacy = {k: v for k, v in status_of("sent").items() if k != "MessageStatus"}
    assert PROVIDER.dedupe_key(form(legacy), FORM) == f"{sid}:sent"
    older = {k: v for k, v in status_of("sent").items() if k != "MessageSid"}   # only SmsSid
    assert PROVIDER.dedupe_key(form(older), FORM) == f"{sid}:sent"


def test_dedupe_key_without_message_sid_or_for_json_is_the_body_hash():
    raw = form({"From": "+1555", "Body": "x"})
    assert PROVIDER.dedupe_key(raw, FORM) == "sha256:" + hashlib.sha256(raw).hexdigest()
    body = json.dumps(SMS).encode()
    assert PROVIDER.dedupe_key(body, {"Content-Type": "application/json"}) == \
        "sha256:" + hashlib.sha256(body).hexdigest()


# --- the rest of the interface ----------------------------------------------------------------

def test_provider_implements_every_member_of_the_interface():
    from gateway.providers import Provider
    members = set(Provider.__annotations__) | {n for n in vars(Provider) if not n.startswith("_")}
    assert members >= {"name", "channel_ids", "verify", "parse", "download", "send", "ack"}
    for member in members:
        assert hasattr(PROVIDER, member), member


def test_provider_shape():
    assert PROVIDER.name == "twilio"
    assert PROVIDER.required_credentials == ("account_sid", "auth_token")
    assert PROVIDER.optional_credentials == ("webhook_secret", "previous_auth_token")
    assert PROVIDER.ack == ('<?xml version="1.0" encoding="UTF-8"?><Response/>', "text/xml")
    assert PROVIDER.handshake({"hub.mode": "subscribe", "hub.challenge": "x"}) is None
    assert PROVIDER.handshake({}) is None


def test_send_takes_message_channel_and_credentials():
    # Sending itself is covered in test_twilio_send.py; a read receipt needs no request on SMS.
    read = OutboundMessage(id="m1", to="+15557654321", to_kind="phone", kind="read", content={"message_id": "SM1"})
    assert PROVIDER.send(read, {"external_id": "+15551234567", "settings": {}},
                         {"account_sid": "AC1", "auth_token": "t"}) == SendResult("sent")

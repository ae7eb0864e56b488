"""`say`: signed inbound webhooks the gateway accepts (checked with the gateway's own verifiers and parsers)."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

import pytest

from gateway.providers import InboundMessage
from gateway.sandbox import inbound, say
from sandbox_helpers import APP_SECRET, TWILIO_SID, TWILIO_TOKEN, configure, meta_signed, twilio_signed
from webhooks.messenger import parse as messenger_parse
from webhooks.twilio import parse as twilio_parse
from webhooks.twilio import signature as twilio_signature
from webhooks.whatsapp import envelope as whatsapp_envelope
from webhooks.whatsapp import parse as whatsapp_parse
from webhooks.whatsapp import verify as whatsapp_verify


def test_whatsapp_say(receiver):
    status = say(receiver.url, phone_number_id="1029384756", from_number="+34600000001", text="Hola ¿qué tal? 👋",
                 app_secret=APP_SECRET, name="Ana")
    assert status == 200
    (hook,) = receiver.wait_for(1)
    assert hook["path"] == "/webhooks/whatsapp" and meta_signed(hook)
    assert whatsapp_verify.verify_request(hook["body"], hook["headers"], APP_SECRET)
    assert b"\\ud83d\\udc4b" in hook["body"]          # escaped like Meta, surrogate pair for the emoji
    value = json.loads(hook["body"])["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == "1029384756"
    assert value["contacts"] == [{"profile": {"name": "Ana"}, "wa_id": "34600000001"}]
    (msg,) = value["messages"]
    assert msg["from"] == "34600000001" and msg["type"] == "text" and msg["text"]["body"] == "Hola ¿qué tal? 👋"
    assert msg["id"].startswith("wamid.") and abs(int(msg["timestamp"]) - time.time()) < 5
    assert whatsapp_envelope.channel_ids(hook["body"])[0] == "1029384756"
    (event,) = whatsapp_parse.parse_body(hook["body"])
    assert isinstance(event, InboundMessage)
    assert (event.sender, event.text, event.sender_name) == ("+34600000001", "Hola ¿qué tal? 👋", "Ana")


def test_each_say_is_a_new_message(receiver):
    first = inbound(receiver.url, phone_number_id="1", from_number="+34600000001", text="a", app_secret="s")
    second = inbound(receiver.url, phone_number_id="1", from_number="+34600000001", text="a", app_secret="s")
    assert first["message_id"] != second["message_id"] and first["body"] != second["body"]


def test_twilio_sms_and_whatsapp_say(receiver):
    status = say(receiver.url, channel_kind="twilio", from_number="+34600000001", text="Hola", app_secret=None,
                 to_number="+14155238886", auth_token=TWILIO_TOKEN, account_sid=TWILIO_SID)
    assert status == 200
    say(receiver.url, channel_kind="twilio", from_number="whatsapp:+34600000001", text="Hola", name="Ana",
        to_number="+14155238886", auth_token=TWILIO_TOKEN, account_sid=TWILIO_SID)
    sms, wa = receiver.wait_for(2)
    for hook in (sms, wa):
        assert hook["path"] == "/webhooks/twilio" and twilio_signed(hook)
        assert twilio_signature.verify_request(hook["body"], hook["headers"], hook["url"], [TWILIO_TOKEN])
    form = dict(parse_qsl(sms["body"].decode()))
    assert form["From"] == "+34600000001" and form["To"] == "+14155238886" and form["SmsStatus"] == "received"
    assert form["MessageSid"].startswith("SM") and form["AccountSid"] == TWILIO_SID
    wa_form = dict(parse_qsl(wa["body"].decode()))
    assert wa_form["To"] == "whatsapp:+14155238886" and wa_form["ProfileName"] == "Ana"
    assert wa_form["WaId"] == "34600000001"
    (event,) = twilio_parse.parse_body(wa["body"], wa["headers"])
    assert isinstance(event, InboundMessage) and event.text == "Hola" and event.sender_name == "Ana"
    assert twilio_parse.channel_ids(sms["body"], sms["headers"])[0] == "+14155238886"


def test_messenger_say(receiver):
    assert say(receiver.url, channel_kind="messenger", page_id="PAGE1", from_number="PSID1", text="hey",
               app_secret=APP_SECRET) == 200
    (hook,) = receiver.wait_for(1)
    assert hook["path"] == "/webhooks/messenger" and meta_signed(hook)
    (event,) = messenger_parse.parse_body(hook["body"], platform="messenger", object_name="page",
                                          identity_kind="psid")
    assert isinstance(event, InboundMessage) and event.text == "hey" and event.sender == "PSID1"


def test_say_returns_the_gateways_status(receiver):
    receiver.status = 401
    assert say(receiver.url, phone_number_id="1", from_number="+34600000001", text="x", app_secret="wrong") == 401


def test_say_needs_its_secrets():
    with pytest.raises(ValueError):
        say("http://127.0.0.1:9", phone_number_id="1", from_number="+34600000001", text="x", app_secret=None)
    with pytest.raises(ValueError):
        say("http://127.0.0.1:9", channel_kind="sms", from_number="+34600000001", text="x", app_secret="s")


def test_say_through_the_control_api_uses_the_configured_secrets(http, sandbox, receiver):
    configure(http, sandbox, gateway_url=receiver.url)
    configure(http, sandbox, scope="1029384756", app_secret=APP_SECRET, waba_id="WABA-9")
    resp = http.post(f"{sandbox.url}/_sandbox/say", json={"phone_number_id": "1029384756", "from": "+34600000001",
                                                          "text": "Hola"})
    assert resp.status_code == 200 and resp.json()["status"] == 200
    (hook,) = receiver.wait_for(1)
    assert meta_signed(hook) and json.loads(hook["body"])["entry"][0]["id"] == "WABA-9"
    missing = http.post(f"{sandbox.url}/_sandbox/say", json={"text": "x"})
    assert missing.status_code == 400

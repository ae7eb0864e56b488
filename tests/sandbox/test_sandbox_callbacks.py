"""Status webhooks from the sandbox: signed, in order, spaced by status_delay_ms, readable by the gateway's parsers."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

from gateway.providers import StatusUpdate
from sandbox_helpers import (APP_SECRET, TWILIO_SID, TWILIO_TOKEN, cloud_send, configure, meta_signed, text_body,
                             twilio_signed)
from webhooks.messenger import parse as messenger_parse
from webhooks.twilio import parse as twilio_parse
from webhooks.twilio import signature as twilio_signature
from webhooks.whatsapp import parse as whatsapp_parse
from webhooks.whatsapp import verify as whatsapp_verify

PHONE = "1029384756"


def test_whatsapp_statuses_signed_in_order_with_delay(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=120,
                           waba_id="WABA-1", display_phone_number="15550009999")
    sent_at = time.monotonic()
    resp = cloud_send(http, sandbox, text_body(text="¿Qué tal? 😀", biz_opaque_callback_data="our-id-7"))
    assert time.monotonic() - sent_at < 0.1          # the request never waits for its webhooks
    wamid = resp.json()["messages"][0]["id"]
    hooks = receiver.wait_for(3)
    statuses = []
    for hook in hooks:
        assert hook["path"] == "/webhooks/whatsapp" and hook["method"] == "POST"
        assert meta_signed(hook)
        assert whatsapp_verify.verify_request(hook["body"], hook["headers"], APP_SECRET)   # the gateway agrees
        assert hook["body"].isascii()                                                    # non-ASCII escaped
        doc = json.loads(hook["body"])
        assert doc["object"] == "whatsapp_business_account" and doc["entry"][0]["id"] == "WABA-1"
        change = doc["entry"][0]["changes"][0]
        assert change["field"] == "messages"
        assert change["value"]["metadata"] == {"display_phone_number": "15550009999", "phone_number_id": PHONE}
        (status,) = change["value"]["statuses"]
        assert status["id"] == wamid and status["recipient_id"] == "34600000001"
        assert status["timestamp"].isdigit() and abs(int(status["timestamp"]) - time.time()) < 5
        assert status["biz_opaque_callback_data"] == "our-id-7"
        statuses.append(status["status"])
    assert statuses == ["sent", "delivered", "read"]
    gaps = [b["at"] - a["at"] for a, b in zip(hooks, hooks[1:])]
    assert all(gap >= 0.11 for gap in gaps), gaps
    assert hooks[0]["at"] - sent_at >= 0.11
    events = whatsapp_parse.parse_body(hooks[1]["body"])
    assert isinstance(events[0], StatusUpdate) and events[0].status == "delivered"
    assert events[0].provider_message_id == wamid and events[0].callback_data == "our-id-7"
    # The sandbox remembers how far each message got (once its worker has seen the answer).
    assert http.post(f"{sandbox.url}/_sandbox/wait", json={"timeout_s": 2}).json()["idle"] is True
    rec = http.get(f"{sandbox.url}/_sandbox/messages/{wamid}").json()
    assert rec["callback_status"] == "read" and rec["callback_http_status"] == 200


def test_statuses_setting_and_no_callbacks_without_gateway(http, make_sandbox, receiver):
    sandbox = make_sandbox(app_secret=APP_SECRET, status_delay_ms=0)
    cloud_send(http, sandbox, text_body())
    configure(http, sandbox, gateway_url=receiver.url, statuses=["delivered"])
    cloud_send(http, sandbox, text_body())
    (hook,) = receiver.wait_for(1)
    assert json.loads(hook["body"])["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] == "delivered"
    assert http.post(f"{sandbox.url}/_sandbox/wait", json={"timeout_s": 2}).json()["idle"] is True
    assert len(receiver.requests) == 1


def test_callbacks_retry_on_5xx_and_are_logged(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=0, statuses=["sent"])
    sandbox.sandbox.dispatcher.retry_base_s = 0.01
    receiver.status = 503
    cloud_send(http, sandbox, text_body())
    receiver.wait_for(2)
    receiver.status = 200
    receiver.wait_for(3)
    assert http.post(f"{sandbox.url}/_sandbox/wait", json={"timeout_s": 2}).json()["idle"] is True
    log = http.get(f"{sandbox.url}/_sandbox/callbacks").json()
    assert [e["http_status"] for e in log["callbacks"]][:3] == [503, 503, 200]
    assert log["ok"] == 1 and log["retried"] >= 2 and log["failed"] == 0
    assert log["callbacks"][0]["event"] == "whatsapp:sent" and log["callbacks"][0]["url"].endswith("/webhooks/whatsapp")


def test_missing_app_secret_means_no_webhooks(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, status_delay_ms=0)
    cloud_send(http, sandbox, text_body())
    time.sleep(0.1)
    assert receiver.requests == []
    assert http.get(f"{sandbox.url}/_sandbox/stats").json()["counts"]["callbacks_skipped_no_app_secret"] == 1


def test_messenger_delivery_then_read(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=30, echoes=False)
    resp = http.post(f"{sandbox.url}/v24.0/PAGE1/messages", params={"access_token": "t"},
                     json={"recipient": {"id": "PSID9"}, "message": {"text": "hola"}})
    mid = resp.json()["message_id"]
    delivery, read = receiver.wait_for(2)
    for hook in (delivery, read):
        assert hook["path"] == "/webhooks/messenger" and meta_signed(hook)
    d = json.loads(delivery["body"])
    assert d["object"] == "page" and d["entry"][0]["id"] == "PAGE1"
    event = d["entry"][0]["messaging"][0]
    assert event["sender"] == {"id": "PSID9"} and event["recipient"] == {"id": "PAGE1"}
    assert event["delivery"]["mids"] == [mid] and isinstance(event["delivery"]["watermark"], int)
    r = json.loads(read["body"])["entry"][0]["messaging"][0]
    assert r["read"]["watermark"] >= event["delivery"]["watermark"]
    parsed = messenger_parse.parse_body(delivery["body"], platform="messenger", object_name="page",
                                        identity_kind="psid")
    assert isinstance(parsed[0], StatusUpdate) and parsed[0].status == "delivered"


def test_messenger_echoes_the_send_with_its_metadata_first(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=0,
                           statuses=["delivered"], batch_window_ms=0)
    mid = http.post(f"{sandbox.url}/v24.0/PAGE1/messages", params={"access_token": "t"},
                    json={"recipient": {"id": "PSID9"}, "message": {"text": "hola", "metadata": "our-id"}}
                    ).json()["message_id"]
    events = []
    for hook in receiver.wait_for(1):
        assert meta_signed(hook)
        events += json.loads(hook["body"])["entry"][0]["messaging"]
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        events = [e for hook in receiver.requests for e in json.loads(hook["body"])["entry"][0]["messaging"]]
    echo = events[0]
    assert echo["sender"] == {"id": "PAGE1"} and echo["recipient"] == {"id": "PSID9"}
    assert echo["message"]["is_echo"] is True and echo["message"]["mid"] == mid
    assert echo["message"]["metadata"] == "our-id" and echo["message"]["text"] == "hola"
    assert events[1]["delivery"]["mids"] == [mid]


def test_instagram_platform_sends_seen_events(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=0, platform="instagram",
                           echoes=False)
    mid = http.post(f"{sandbox.url}/v24.0/IG1/messages", headers={"Authorization": "Bearer t"},
                    json={"recipient": {"id": "IGSID"}, "message": {"text": "hi"}}).json()["message_id"]
    (hook,) = receiver.wait_for(1)
    doc = json.loads(hook["body"])
    assert hook["path"] == "/webhooks/instagram" and doc["object"] == "instagram"
    assert doc["entry"][0]["messaging"][0]["read"] == {"mid": mid}


def test_twilio_status_callbacks_signed_with_the_auth_token(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, status_delay_ms=20)
    resp = http.post(f"{sandbox.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", auth=(TWILIO_SID, TWILIO_TOKEN),
                     data={"To": "+34600000001", "From": "+15005550006", "Body": "hi"})
    sid = resp.json()["sid"]
    hooks = receiver.wait_for(2)
    assert [dict(parse_qsl(h["body"].decode()))["MessageStatus"] for h in hooks] == ["sent", "delivered"]
    for hook in hooks:
        assert hook["url"] == receiver.url + "/webhooks/twilio"
        assert hook["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert twilio_signed(hook)
        assert twilio_signature.verify_request(hook["body"], hook["headers"], hook["url"], [TWILIO_TOKEN])
        form = dict(parse_qsl(hook["body"].decode()))
        assert form["MessageSid"] == sid and form["SmsSid"] == sid and form["AccountSid"] == TWILIO_SID
        assert (form["From"], form["To"]) == ("+15005550006", "+34600000001")
    events = twilio_parse.parse_body(hooks[1]["body"], hooks[1]["headers"])
    assert isinstance(events[0], StatusUpdate) and events[0].status == "delivered"
    # The Message resource follows the callbacks.
    time.sleep(0.05)
    fetched = http.get(f"{sandbox.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json",
                       auth=(TWILIO_SID, TWILIO_TOKEN)).json()
    assert fetched["status"] == "delivered" and fetched["date_sent"]


def test_twilio_status_callback_url_and_whatsapp_read(http, make_sandbox, receiver):
    sandbox = make_sandbox(status_delay_ms=0, twilio_auth_token="configured-token")
    callback = receiver.url + "/hooks/twilio-status?channel=7"
    resp = http.post(f"{sandbox.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                     auth=(TWILIO_SID, "configured-token"),
                     data={"To": "whatsapp:+34600000001", "From": "whatsapp:+14155238886", "Body": "hi",
                           "StatusCallback": callback})
    assert resp.status_code == 201
    hooks = receiver.wait_for(3)
    assert [dict(parse_qsl(h["body"].decode()))["MessageStatus"] for h in hooks] == ["sent", "delivered", "read"]
    assert all(h["url"] == callback and twilio_signed(h, "configured-token") for h in hooks)
    assert dict(parse_qsl(hooks[0]["body"].decode()))["ChannelToAddress"] == "+34600000001"


def test_template_status_webhook(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, template_status="PENDING")
    created = http.post(f"{sandbox.url}/v24.0/WABA7/message_templates", headers={"Authorization": "Bearer t"},
                        json={"name": "promo", "language": "es", "category": "MARKETING",
                              "components": [{"type": "BODY", "text": "Hola"}]}).json()
    assert created["status"] == "PENDING"
    moved = http.post(f"{sandbox.url}/_sandbox/templates/{created['id']}/status", json={"status": "APPROVED"})
    assert moved.json()["status"] == "APPROVED"
    (hook,) = receiver.wait_for(1)
    assert meta_signed(hook)
    change = json.loads(hook["body"])["entry"][0]["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"]["event"] == "APPROVED" and change["value"]["message_template_name"] == "promo"
    assert change["value"]["message_template_id"] == int(created["id"])


def test_slow_gateway_never_slows_sends(http, make_sandbox):
    # A gateway that never answers: sends still return at once.
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        sandbox = make_sandbox(gateway_url=f"http://127.0.0.1:{silent.getsockname()[1]}", app_secret=APP_SECRET,
                               status_delay_ms=0, callback_timeout_s=0.5, callback_retries=0)
        started = time.monotonic()
        for _ in range(20):
            assert cloud_send(http, sandbox, text_body()).status_code == 200
        assert time.monotonic() - started < 1.0
    finally:
        silent.close()


def test_statuses_due_together_share_one_post(http, make_sandbox, receiver):
    # A window wide enough that three sends land in it even on a loaded machine.
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=0, batch_window_ms=1500)
    wamids = [cloud_send(http, sandbox, text_body()).json()["messages"][0]["id"] for _ in range(3)]
    hooks = receiver.wait_for(3)
    time.sleep(0.05)
    assert len(receiver.requests) == 3
    for hook, word in zip(hooks, ["sent", "delivered", "read"]):
        assert meta_signed(hook)
        statuses = json.loads(hook["body"])["entry"][0]["changes"][0]["value"]["statuses"]
        assert [s["id"] for s in statuses] == wamids and {s["status"] for s in statuses} == {word}
    events = whatsapp_parse.parse_body(hooks[0]["body"])
    assert [e.provider_message_id for e in events] == wamids


def test_batch_max_one_sends_one_status_per_post(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=0, batch_window_ms=300,
                           callback_batch_max=1, statuses=["sent"])
    for _ in range(3):
        cloud_send(http, sandbox, text_body())
    hooks = receiver.wait_for(3)
    assert all(len(json.loads(h["body"])["entry"][0]["changes"][0]["value"]["statuses"]) == 1 for h in hooks)

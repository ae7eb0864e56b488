"""Faults on demand: latency, 429 + Retry-After, 5xx, timeouts, WhatsApp error codes (sync and async), budgets."""
from __future__ import annotations

import json
import time

import pytest
import requests

from sandbox_helpers import APP_SECRET, cloud_send, configure, meta_signed, text_body

PHONE = "1029384756"


def test_latency(http, sandbox):
    configure(http, sandbox, scope=PHONE, latency_ms=150)
    started = time.monotonic()
    assert cloud_send(http, sandbox, text_body()).status_code == 200
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    cloud_send(http, sandbox, text_body(), phone_number_id="other")
    assert time.monotonic() - started < 0.1


def test_429_with_retry_after(http, sandbox):
    configure(http, sandbox, status_429_rate=1.0, retry_after_s=7)
    resp = cloud_send(http, sandbox, text_body())
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert resp.json()["error"]["code"] == 4 and resp.json()["error"]["is_transient"] is True
    twilio = http.post(f"{sandbox.url}/2010-04-01/Accounts/AC{'a' * 32}/Messages.json",
                       data={"To": "+34600000001", "From": "+15005550006", "Body": "x"}, auth=("AC" + "a" * 32, "t"))
    assert twilio.status_code == 429 and twilio.json()["code"] == 20429 and twilio.headers["Retry-After"] == "7"


def test_5xx(http, sandbox):
    configure(http, sandbox, status_5xx_rate=1.0)
    resp = cloud_send(http, sandbox, text_body())
    assert resp.status_code == 500 and resp.json()["error"]["is_transient"] is True
    configure(http, sandbox, status_5xx_code=503)
    resp = cloud_send(http, sandbox, text_body())
    assert resp.status_code == 503 and resp.json()["error"]["code"] == 2
    twilio = http.post(f"{sandbox.url}/2010-04-01/Accounts/AC{'a' * 32}/Messages.json",
                       data={"To": "+34600000001", "From": "+15005550006", "Body": "x"}, auth=("AC" + "a" * 32, "t"))
    assert twilio.status_code == 503 and twilio.json()["code"] == 20503


def test_rates_are_probabilities(http, sandbox):
    configure(http, sandbox, status_429_rate=0.5, seed=1)
    statuses = [cloud_send(http, sandbox, text_body()).status_code for _ in range(60)]
    assert 10 < statuses.count(429) < 50 and statuses.count(200) == 60 - statuses.count(429)


def test_timeout_sleeps_past_the_client_and_still_accepts(http, sandbox):
    configure(http, sandbox, timeout_rate=1.0, timeout_s=0.6)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        cloud_send(http, sandbox, text_body(), timeout=(2, 0.2))
    assert time.monotonic() - started < 0.5
    time.sleep(0.6)
    got = http.get(f"{sandbox.url}/_sandbox/messages").json()["messages"]
    # The message went through after all: exactly the "unknown outcome" a gateway must reconcile.
    assert len(got) == 1 and got[0]["fault"] == "timeout" and got[0]["http_status"] == 200
    assert got[0]["provider_message_id"].startswith("wamid.")


@pytest.mark.parametrize("code, status", [(130429, 400), (131047, 400), (131026, 400), (132000, 400),
                                          (131056, 400), (131050, 400), (190, 401), (131000, 500), (10, 403),
                                          (132001, 404), (4, 429)])
def test_whatsapp_error_codes_sync(http, sandbox, code, status):
    configure(http, sandbox, scope=PHONE, whatsapp_error_code=code)
    resp = cloud_send(http, sandbox, text_body())
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == code and error["message"].startswith(f"(#{code})")
    assert error["error_data"]["messaging_product"] == "whatsapp" and error["error_data"]["details"]


def test_131047_lets_templates_through(http, sandbox):
    configure(http, sandbox, whatsapp_error_code=131047)
    assert cloud_send(http, sandbox, text_body()).json()["error"]["code"] == 131047
    template = {"messaging_product": "whatsapp", "to": "34600000001", "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}}}
    assert cloud_send(http, sandbox, template).status_code == 200


def test_error_details_override_and_mark_as_read_unaffected(http, sandbox):
    configure(http, sandbox, whatsapp_error_code=131026, error_details="Receiver is incapable of receiving")
    assert cloud_send(http, sandbox, text_body()).json()["error"]["error_data"]["details"] == \
        "Receiver is incapable of receiving"
    read = cloud_send(http, sandbox, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"})
    assert read.status_code == 200


def test_async_failure_is_a_signed_failed_status(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, status_delay_ms=0)
    configure(http, sandbox, scope=PHONE, whatsapp_error_code=131047, async_failure=True)
    resp = cloud_send(http, sandbox, text_body(biz_opaque_callback_data="msg-42"))
    assert resp.status_code == 200
    wamid = resp.json()["messages"][0]["id"]
    (hook,) = receiver.wait_for(1)
    assert hook["path"] == "/webhooks/whatsapp" and meta_signed(hook)
    status = json.loads(hook["body"])["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["id"] == wamid and status["status"] == "failed" and status["recipient_id"] == "34600000001"
    assert status["biz_opaque_callback_data"] == "msg-42"
    assert status["errors"][0]["code"] == 131047 and status["errors"][0]["title"] == "Re-engagement message"
    assert status["errors"][0]["error_data"]["details"]
    time.sleep(0.1)
    assert len(receiver.requests) == 1      # no sent/delivered/read for a failed message


def test_twilio_async_error_is_an_undelivered_callback(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, status_delay_ms=0)
    configure(http, sandbox, twilio_error_code=30003)
    resp = http.post(f"{sandbox.url}/2010-04-01/Accounts/AC{'a' * 32}/Messages.json",
                     data={"To": "+34600000001", "From": "+15005550006", "Body": "x"}, auth=("AC" + "a" * 32, "t"))
    assert resp.status_code == 201
    (hook,) = receiver.wait_for(1)
    form = dict(p.split("=", 1) for p in hook["body"].decode().split("&"))
    assert form["MessageStatus"] == "undelivered" and form["ErrorCode"] == "30003"
    assert form["MessageSid"] == resp.json()["sid"]


def test_max_faults_budget_then_recovery(http, sandbox):
    configure(http, sandbox, scope=PHONE, status_429_rate=1.0, max_faults=2)
    statuses = [cloud_send(http, sandbox, text_body()).status_code for _ in range(4)]
    assert statuses == [429, 429, 200, 200]
    assert http.get(f"{sandbox.url}/_sandbox/config").json()["faults_remaining"] == {PHONE: 0}


def test_scopes_recipient_beats_channel_beats_global(http, sandbox):
    configure(http, sandbox, whatsapp_error_code=131000)
    configure(http, sandbox, scope=PHONE, whatsapp_error_code=131026)
    configure(http, sandbox, scope="to:34600000009", whatsapp_error_code=131050)
    assert cloud_send(http, sandbox, text_body(), phone_number_id="x").json()["error"]["code"] == 131000
    assert cloud_send(http, sandbox, text_body()).json()["error"]["code"] == 131026
    assert cloud_send(http, sandbox, text_body(to="+34600000009")).json()["error"]["code"] == 131050
    configure(http, sandbox, scope=PHONE, whatsapp_error_code=None)      # null removes the setting
    assert cloud_send(http, sandbox, text_body()).json()["error"]["code"] == 131000

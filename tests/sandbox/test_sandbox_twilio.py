"""Twilio Messages API of the sandbox: basic auth, the Message resource, error codes, fetch."""
from __future__ import annotations

import re

import pytest

from sandbox_helpers import TWILIO_SID, TWILIO_TOKEN, configure

SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")


def messages_url(sandbox, account=TWILIO_SID):
    return f"{sandbox.url}/2010-04-01/Accounts/{account}/Messages.json"


def send(http, sandbox, data, *, auth=(TWILIO_SID, TWILIO_TOKEN), account=TWILIO_SID):
    return http.post(messages_url(sandbox, account), data=data, auth=auth)


def assert_twilio_error(resp, status, code):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code and body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_sms_send_returns_the_message_resource(http, sandbox):
    resp = send(http, sandbox, {"To": "+34600000001", "From": "+15005550006", "Body": "Hola"})
    assert resp.status_code == 201, resp.text
    msg = resp.json()
    assert SID.match(msg["sid"]) and msg["sid"].startswith("SM")
    assert msg["status"] == "queued"
    assert (msg["to"], msg["from"], msg["body"]) == ("+34600000001", "+15005550006", "Hola")
    assert msg["num_segments"] == "1" and msg["num_media"] == "0"
    assert msg["account_sid"] == TWILIO_SID and msg["direction"] == "outbound-api"
    assert msg["api_version"] == "2010-04-01" and msg["date_created"].endswith("+0000")
    assert msg["uri"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{msg['sid']}.json"
    assert msg["error_code"] is None and msg["price"] is None

    fetched = http.get(f"{sandbox.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages/{msg['sid']}.json",
                       auth=(TWILIO_SID, TWILIO_TOKEN))
    assert fetched.status_code == 200 and fetched.json()["sid"] == msg["sid"]
    missing = http.get(f"{sandbox.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages/SM{'0' * 32}.json",
                       auth=(TWILIO_SID, TWILIO_TOKEN))
    assert_twilio_error(missing, 404, 20404)


def test_segments_media_whatsapp_and_messaging_service(http, sandbox):
    long_gsm = send(http, sandbox, {"To": "+34600000001", "From": "+15005550006", "Body": "a" * 161}).json()
    assert long_gsm["num_segments"] == "2"
    unicode_ = send(http, sandbox, {"To": "+34600000001", "From": "+15005550006", "Body": "ñandú 😀" * 10}).json()
    assert unicode_["num_segments"] == "2"
    mms = send(http, sandbox, [("To", "+34600000001"), ("From", "+15005550006"),
                               ("MediaUrl", "https://x.test/a.jpg"), ("MediaUrl", "https://x.test/b.jpg")]).json()
    assert mms["sid"].startswith("MM") and mms["num_media"] == "2"
    wa = send(http, sandbox, {"To": "whatsapp:+34600000001", "From": "whatsapp:+14155238886", "Body": "hi"}).json()
    assert wa["to"] == "whatsapp:+34600000001" and wa["num_segments"] == "1"
    service = send(http, sandbox, {"To": "+34600000001", "MessagingServiceSid": "MG" + "b" * 32, "Body": "x"})
    assert service.status_code == 201
    assert service.json()["status"] == "accepted" and service.json()["from"] is None
    assert service.json()["messaging_service_sid"] == "MG" + "b" * 32
    stored = http.get(f"{sandbox.url}/_sandbox/messages?provider=twilio").json()["messages"]
    assert stored[2]["body"]["MediaUrl"] == ["https://x.test/a.jpg", "https://x.test/b.jpg"]
    assert stored[4]["channel_id"] == "MG" + "b" * 32 and stored[0]["recipient"] == "+34600000001"


def test_basic_auth(http, sandbox):
    data = {"To": "+34600000001", "From": "+15005550006", "Body": "x"}
    resp = send(http, sandbox, data, auth=None)
    assert_twilio_error(resp, 401, 20003)
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert_twilio_error(send(http, sandbox, data, auth=("AC" + "f" * 32, "x")), 401, 20003)   # not this account
    assert_twilio_error(send(http, sandbox, data, auth=(TWILIO_SID, "")), 401, 20003)
    assert send(http, sandbox, data, auth=(TWILIO_SID, "anything")).status_code == 201
    assert send(http, sandbox, data, auth=("SK" + "c" * 32, "key-secret")).status_code == 201   # API key
    configure(http, sandbox, scope=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN)
    assert_twilio_error(send(http, sandbox, data, auth=(TWILIO_SID, "anything")), 401, 20003)
    assert send(http, sandbox, data).status_code == 201


@pytest.mark.parametrize("data, code", [
    ({"From": "+15005550006", "Body": "x"}, 21604),
    ({"To": "+34600000001", "Body": "x"}, 21603),
    ({"To": "12ab", "From": "+15005550006", "Body": "x"}, 21211),
    ({"To": "+34600000001", "From": "not a number!", "Body": "x"}, 21212),
    ({"To": "+34600000001", "From": "+15005550006"}, 21619),
    ({"To": "+34600000001", "From": "+15005550006", "Body": "x" * 1601}, 21617),
    ({"To": "whatsapp:+34600000001", "From": "+15005550006", "Body": "x"}, 21910),
    ({"To": "+34600000001", "From": "+15005550006", "Body": "x", "StatusCallback": "ftp://x"}, 21609),
])
def test_validation_errors(http, sandbox, data, code):
    body = assert_twilio_error(send(http, sandbox, data), 400, code)
    if code == 21211:
        assert "12ab" in body["message"]


def test_too_many_media(http, sandbox):
    data = [("To", "+34600000001"), ("From", "+15005550006")] + [("MediaUrl", f"https://x.test/{i}") for i in range(11)]
    assert_twilio_error(send(http, sandbox, data), 400, 21623)


def test_fault_codes(http, sandbox):
    data = {"To": "+34600000001", "From": "+15005550006", "Body": "x"}
    configure(http, sandbox, scope="to:34600000001", twilio_error_code=21610)
    assert_twilio_error(send(http, sandbox, data), 400, 21610)
    assert send(http, sandbox, {**data, "To": "+34600000002"}).status_code == 201   # only that recipient
    configure(http, sandbox, scope="to:34600000001", twilio_error_code=20429, retry_after_s=3)
    resp = send(http, sandbox, data)
    assert_twilio_error(resp, 429, 20429)
    assert resp.headers["Retry-After"] == "3"

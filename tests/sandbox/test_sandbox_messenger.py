"""Messenger / Instagram Send API of the sandbox (same path as the Cloud API, told apart by the body)."""
from __future__ import annotations

import pytest

from sandbox_helpers import configure

PAGE = "104857600112233"


def send(http, sandbox, body, *, page=PAGE, token="page-token", bearer=False):
    if bearer:
        return http.post(f"{sandbox.url}/v24.0/{page}/messages", json=body,
                         headers={"Authorization": f"Bearer {token}"})
    params = {"access_token": token} if token else {}
    return http.post(f"{sandbox.url}/v24.0/{page}/messages", json=body, params=params)


def text(psid="6543210987654321", message="hola", **extra):
    return {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {"text": message}, **extra}


def test_send_with_query_token_and_bearer_and_me(http, sandbox):
    for resp in (send(http, sandbox, text()), send(http, sandbox, text(), bearer=True),
                 send(http, sandbox, text(), page="me")):
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["recipient_id"] == "6543210987654321"
        assert body["message_id"].startswith("mid.")
    stored = http.get(f"{sandbox.url}/_sandbox/messages?provider=messenger").json()["messages"]
    assert [m["channel_id"] for m in stored] == [PAGE, PAGE, "me"]
    assert all(m["type"] == "text" and m["recipient"] == "6543210987654321" for m in stored)


def test_attachment_and_sender_action(http, sandbox):
    image = {"recipient": {"id": "1"}, "message": {"attachment": {"type": "image", "payload": {
        "url": "https://x.test/a.jpg", "is_reusable": True}}}}
    assert send(http, sandbox, image).status_code == 200
    typing = send(http, sandbox, {"recipient": {"id": "1"}, "sender_action": "typing_on"})
    assert typing.status_code == 200 and typing.json() == {"recipient_id": "1"}


@pytest.mark.parametrize("body, needle", [
    ({"message": {"text": "x"}}, "recipient"),
    ({"recipient": {"id": "1"}}, "either message or state"),
    ({"recipient": {"id": "1"}, "message": {"text": "x" * 2001}}, "2000"),
    ({"recipient": {"id": "1"}, "messaging_type": "PROMO", "message": {"text": "x"}}, "messaging_type"),
    ({"recipient": {"id": "1"}, "messaging_type": "MESSAGE_TAG", "message": {"text": "x"}}, "tag"),
    ({"recipient": {"id": "1"}, "message": {}}, "text or attachment"),
])
def test_bad_bodies(http, sandbox, body, needle):
    resp = send(http, sandbox, body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException" and needle in error["message"]


def test_missing_token(http, sandbox):
    resp = send(http, sandbox, text(), token=None)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == 190


def test_fault_codes_no_matching_user_window_and_rate_limit(http, sandbox):
    configure(http, sandbox, scope=PAGE, messenger_error_code=100)
    error = send(http, sandbox, text()).json()["error"]
    assert (error["code"], error["error_subcode"]) == (100, 2018001)

    configure(http, sandbox, scope=PAGE, messenger_error_code=10)
    resp = send(http, sandbox, text())
    assert resp.status_code == 400
    assert (resp.json()["error"]["code"], resp.json()["error"]["error_subcode"]) == (10, 2018278)
    # A message tag is the way out of the window.
    tagged = send(http, sandbox, text(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT"))
    assert tagged.status_code == 200

    configure(http, sandbox, scope=PAGE, messenger_error_code=613)
    error = send(http, sandbox, text()).json()["error"]
    assert error["code"] == 613 and error["is_transient"] is True
    # Other pages are unaffected.
    assert send(http, sandbox, text(), page="999").status_code == 200

"""Cloud API endpoints of the sandbox: send, validation errors, auth, mark-as-read, media, templates."""
from __future__ import annotations

import hashlib
import re

import pytest

from sandbox_helpers import cloud_send, configure, text_body

WAMID = re.compile(r"^wamid\.[A-Za-z0-9+/=]{20,}$")


def assert_graph_error(resp, status, code):
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    return error


def test_text_send_answers_like_meta(http, sandbox):
    resp = cloud_send(http, sandbox, text_body(to="+34 600-000-001"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+34 600-000-001", "wa_id": "34600000001"}]
    assert len(body["messages"]) == 1 and WAMID.match(body["messages"][0]["id"])
    again = cloud_send(http, sandbox, text_body()).json()["messages"][0]["id"]
    assert again != body["messages"][0]["id"]


@pytest.mark.parametrize("body", [
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "image", "image": {"link": "https://x.test/a.jpg",
                                                                                       "caption": "hi"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "document", "document": {"id": "123",
                                                                                            "filename": "a.pdf"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "audio", "audio": {"id": "123"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "video", "video": {"id": "1"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "sticker", "sticker": {"id": "1"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "location",
     "location": {"latitude": 40.4, "longitude": -3.7, "name": "Sol"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "contacts",
     "contacts": [{"name": {"formatted_name": "Ana"}, "phones": [{"phone": "+34600000002"}]}]},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "reaction",
     "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "template",
     "template": {"name": "order_update", "language": {"code": "en_US"},
                  "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
                                 {"type": "button", "sub_type": "quick_reply", "index": "0",
                                  "parameters": [{"type": "payload", "payload": "YES"}]}]}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "interactive",
     "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
         {"type": "reply", "reply": {"id": "a", "title": "A"}}, {"type": "reply", "reply": {"id": "b", "title": "B"}},
         {"type": "reply", "reply": {"id": "c", "title": "C"}}]}}},
    {"messaging_product": "whatsapp", "to": "34600000001", "type": "interactive",
     "interactive": {"type": "list", "body": {"text": "Menu"}, "action": {"button": "Open", "sections": [
         {"title": "S", "rows": [{"id": "1", "title": "One", "description": "first"}]}]}}},
    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600000001",
     "context": {"message_id": "wamid.Y"}, "text": {"body": "default type is text"}},
])
def test_every_message_type_is_accepted(http, sandbox, body):
    resp = cloud_send(http, sandbox, body)
    assert resp.status_code == 200, resp.text
    assert WAMID.match(resp.json()["messages"][0]["id"])


@pytest.mark.parametrize("body, code, needle", [
    ({"to": "34600000001", "type": "text", "text": {"body": "x"}}, 100, "messaging_product"),
    ({"messaging_product": "sms", "to": "34600000001", "text": {"body": "x"}}, 100, "messaging_product"),
    ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 100, "to"),
    ({"messaging_product": "whatsapp", "to": "12", "text": {"body": "x"}}, 100, "to"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "poll", "poll": {}}, 100, "type"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "image"}, 100, "image"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "text", "text": {}}, 100, "body"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "text": {"body": "x" * 4097}}, 100, "4096"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "image", "image": {"id": "1", "link": "https://a"}},
     100, "exactly one"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "audio", "audio": {"id": "1", "caption": "no"}},
     100, "caption"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "template", "template": {"name": "t"}},
     100, "language"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "location", "location": {"latitude": 100,
                                                                                           "longitude": 0}},
     100, "latitude"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": str(i), "title": f"T{i}"}} for i in range(4)]}}}, 131009, "at most 3"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]}}}, 131009, "title length"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "type": "interactive", "interactive": {
        "type": "list", "body": {"text": "M"}, "action": {"button": "Open", "sections": [
            {"title": "S", "rows": [{"id": str(i), "title": f"r{i}"} for i in range(11)]}]}}}, 131009, "at most 10"),
    ({"messaging_product": "whatsapp", "to": "34600000001", "text": {"body": "x"},
      "biz_opaque_callback_data": "x" * 513}, 100, "512"),
])
def test_bad_bodies_get_metas_error_envelope(http, sandbox, body, code, needle):
    resp = cloud_send(http, sandbox, body)
    error = assert_graph_error(resp, 400, code)
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert needle in error["error_data"]["details"] + error["message"]


def test_body_that_is_not_json_is_a_400(http, sandbox):
    resp = http.post(f"{sandbox.url}/v24.0/1029384756/messages", data=b"{nope",
                     headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
    assert_graph_error(resp, 400, 100)


def test_missing_or_wrong_token_is_401_code_190(http, sandbox):
    assert_graph_error(cloud_send(http, sandbox, text_body(), token=None), 401, 190)
    configure(http, sandbox, scope="1029384756", access_token="the-right-one")
    assert_graph_error(cloud_send(http, sandbox, text_body(), token="wrong"), 401, 190)
    assert cloud_send(http, sandbox, text_body(), token="the-right-one").status_code == 200
    # Another phone number id still accepts any token.
    assert cloud_send(http, sandbox, text_body(), phone_number_id="555", token="whatever").status_code == 200


def test_mark_as_read(http, sandbox):
    resp = cloud_send(http, sandbox, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A",
                                      "typing_indicator": {"type": "text"}})
    assert resp.status_code == 200 and resp.json() == {"success": True}
    bad = cloud_send(http, sandbox, {"messaging_product": "whatsapp", "status": "read"})
    assert_graph_error(bad, 400, 100)
    got = http.get(f"{sandbox.url}/_sandbox/messages").json()["messages"]
    assert [m["type"] for m in got] == ["read", None]


def test_media_upload_lookup_download_delete(http, sandbox):
    data = b"\x89PNG fake image bytes" * 10
    auth = {"Authorization": "Bearer EAAG-test"}
    up = http.post(f"{sandbox.url}/v24.0/1029384756/media", headers=auth,
                   data={"messaging_product": "whatsapp", "type": "image/png"},
                   files={"file": ("a.png", data, "image/png")})
    assert up.status_code == 200, up.text
    media_id = up.json()["id"]
    assert media_id.isdigit()

    info = http.get(f"{sandbox.url}/v24.0/{media_id}", headers=auth)
    assert info.status_code == 200
    doc = info.json()
    assert doc == {"messaging_product": "whatsapp", "url": f"{sandbox.url}/media-files/{media_id}",
                   "mime_type": "image/png", "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data),
                   "id": media_id}
    got = http.get(doc["url"], headers=auth)
    assert got.status_code == 200 and got.content == data and got.headers["Content-Type"] == "image/png"
    # Like lookaside: no token, no file.
    anonymous = http.get(doc["url"])
    assert anonymous.status_code == 404 and anonymous.headers["Content-Type"].startswith("text/html")

    assert_graph_error(http.get(f"{sandbox.url}/v24.0/{media_id}"), 401, 190)
    assert http.delete(f"{sandbox.url}/v24.0/{media_id}", headers=auth).json() == {"success": True}
    gone = http.get(f"{sandbox.url}/v24.0/{media_id}", headers=auth)
    assert gone.status_code == 400 and gone.json()["error"]["code"] == 100
    assert gone.json()["error"]["error_subcode"] == 33


def test_media_upload_errors(http, sandbox):
    auth = {"Authorization": "Bearer t"}
    no_file = http.post(f"{sandbox.url}/v24.0/1/media", headers=auth, data={"messaging_product": "whatsapp"})
    assert_graph_error(no_file, 400, 100)
    no_product = http.post(f"{sandbox.url}/v24.0/1/media", headers=auth, files={"file": ("a", b"x", "text/plain")})
    assert_graph_error(no_product, 400, 100)


def test_templates_create_list_and_duplicates(http, sandbox):
    auth = {"Authorization": "Bearer t"}
    url = f"{sandbox.url}/v24.0/WABA1/message_templates"
    tpl = {"name": "order_update", "language": "en_US", "category": "UTILITY",
           "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped",
                           "example": {"body_text": [["Ana", "42"]]}}]}
    created = http.post(url, json=tpl, headers=auth)
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "APPROVED" and created.json()["category"] == "UTILITY"
    duplicate = http.post(url, json=tpl, headers=auth)
    assert duplicate.status_code == 400 and duplicate.json()["error"]["error_subcode"] == 2388024
    configure(http, sandbox, scope="WABA1", template_status="PENDING")
    pending = http.post(url, json={**tpl, "language": "es"}, headers=auth).json()
    assert pending["status"] == "PENDING"
    listed = http.get(url, headers=auth).json()["data"]
    assert [(t["name"], t["language"], t["status"]) for t in listed] == [
        ("order_update", "en_US", "APPROVED"), ("order_update", "es", "PENDING")]
    assert listed[0]["components"] == tpl["components"] and listed[0]["id"] == created.json()["id"]
    assert http.get(url + "?status=PENDING", headers=auth).json()["data"][0]["language"] == "es"
    assert http.get(f"{sandbox.url}/v24.0/OTHER/message_templates", headers=auth).json()["data"] == []
    bad = http.post(url, json={"name": "Bad Name", "language": "en", "category": "UTILITY", "components": []},
                    headers=auth)
    assert_graph_error(bad, 400, 100)


def test_strict_templates_check_name_language_and_params(http, sandbox):
    auth = {"Authorization": "Bearer t"}
    http.post(f"{sandbox.url}/v24.0/SANDBOX_WABA/message_templates", headers=auth, json={
        "name": "order_update", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped"}]})
    configure(http, sandbox, strict_templates=True)

    def send(name, lang, params):
        return cloud_send(http, sandbox, {"messaging_product": "whatsapp", "to": "34600000001", "type": "template",
                                          "template": {"name": name, "language": {"code": lang}, "components": [
                                              {"type": "body", "parameters": [{"type": "text", "text": p}
                                                                              for p in params]}]}})
    assert send("order_update", "en_US", ["Ana", "42"]).status_code == 200
    assert_graph_error(send("order_update", "en", ["Ana", "42"]), 404, 132001)
    assert_graph_error(send("nope", "en_US", ["Ana", "42"]), 404, 132001)
    assert_graph_error(send("order_update", "en_US", ["Ana"]), 400, 132000)


def test_unknown_graph_path(http, sandbox):
    resp = http.get(f"{sandbox.url}/v24.0/a/b/c")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == 2500

"""Sandbox templates: delete (by name, by hsm_id) and edit (Meta's status, category and frequency rules, review)."""
from __future__ import annotations

import json
import time

import pytest

from sandbox_helpers import APP_SECRET, cloud_send, configure

AUTH = {"Authorization": "Bearer t"}
WABA = "SANDBOX_WABA"
DAY = 24 * 3600


def body(text="Hi {{1}}, order {{2}} shipped"):
    return [{"type": "BODY", "text": text, "example": {"body_text": [["Ana", "42"]]}}]


def create(http, sandbox, name="order_update", language="en_US", category="UTILITY", waba=WABA):
    resp = http.post(f"{sandbox.url}/v24.0/{waba}/message_templates", headers=AUTH,
                     json={"name": name, "language": language, "category": category, "components": body()})
    assert resp.status_code == 200, resp.text
    return resp.json()["id"]


def listed(http, sandbox, waba=WABA):
    resp = http.get(f"{sandbox.url}/v24.0/{waba}/message_templates", headers=AUTH)
    assert resp.status_code == 200, resp.text
    return {(t["name"], t["language"]): t for t in resp.json()["data"]}


def delete(http, sandbox, waba=WABA, headers=AUTH, **params):
    return http.delete(f"{sandbox.url}/v24.0/{waba}/message_templates", params=params, headers=headers)


def edit(http, sandbox, template_id, doc, headers=AUTH):
    return http.post(f"{sandbox.url}/v24.0/{template_id}", json=doc, headers=headers)


def refused(resp, words):
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException" and error["fbtrace_id"]
    assert words in error["error_user_msg"], error
    return error


def wait_idle(http, sandbox):
    assert http.post(f"{sandbox.url}/_sandbox/wait", json={"timeout_s": 5}).json()["idle"]


def template_send(http, sandbox, language="en_US"):
    return cloud_send(http, sandbox, {
        "messaging_product": "whatsapp", "to": "34600000001", "type": "template",
        "template": {"name": "order_update", "language": {"code": language}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "42"}]}]}})


# -- delete ------------------------------------------------------------------------------------------------------
def test_delete_by_name_removes_every_language_and_sends_fail(http, sandbox):
    create(http, sandbox, language="en_US")
    create(http, sandbox, language="es")
    create(http, sandbox, name="welcome")
    create(http, sandbox, name="order_update", waba="OTHER_WABA")
    configure(http, sandbox, strict_templates=True)
    assert template_send(http, sandbox).status_code == 200

    resp = delete(http, sandbox, name="order_update")
    assert resp.status_code == 200 and resp.json() == {"success": True}
    assert set(listed(http, sandbox)) == {("welcome", "en_US")}
    assert set(listed(http, sandbox, "OTHER_WABA")) == {("order_update", "en_US")}   # other WABAs untouched
    # (strict_templates falls back to any WABA's template of that name, so that copy goes too.)
    assert delete(http, sandbox, waba="OTHER_WABA", name="order_update").status_code == 200
    gone = template_send(http, sandbox)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == 132001
    assert http.get(f"{sandbox.url}/_sandbox/stats").json()["counts"]["templates_deleted"] == 2


def test_delete_by_hsm_id_removes_only_that_language(http, sandbox):
    english = create(http, sandbox, language="en_US")
    spanish = create(http, sandbox, language="es")
    mismatch = delete(http, sandbox, name="welcome", hsm_id=english)
    refused(mismatch, "not 'welcome'")
    resp = delete(http, sandbox, name="order_update", hsm_id=english)
    assert resp.status_code == 200 and resp.json() == {"success": True}
    assert [t["id"] for t in listed(http, sandbox).values()] == [spanish]
    configure(http, sandbox, strict_templates=True)
    assert template_send(http, sandbox, "en_US").json()["error"]["code"] == 132001
    assert template_send(http, sandbox, "es").status_code == 200
    again = delete(http, sandbox, name="order_update", hsm_id=english)
    refused(again, f"id {english}")


def test_delete_unknown_or_without_name(http, sandbox):
    create(http, sandbox)
    unknown = refused(delete(http, sandbox, name="nope"), "'nope'")
    assert unknown["error_user_title"] == "Message template not found"
    refused(delete(http, sandbox, waba="OTHER_WABA", name="order_update"), "'order_update'")
    missing = delete(http, sandbox)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == 100
    assert missing.json()["error"]["message"] == "(#100) The parameter name is required"
    assert set(listed(http, sandbox)) == {("order_update", "en_US")}


def test_delete_and_edit_check_the_token(http, sandbox):
    template_id = create(http, sandbox)
    for resp in (delete(http, sandbox, headers={}, name="order_update"), edit(http, sandbox, template_id,
                                                                              {"components": body()}, headers={})):
        assert resp.status_code == 401 and resp.json()["error"]["code"] == 190
    configure(http, sandbox, scope=WABA, access_token="the-right-token")
    wrong = {"Authorization": "Bearer wrong"}
    for resp in (delete(http, sandbox, headers=wrong, name="order_update"),
                 edit(http, sandbox, template_id, {"components": body()}, headers=wrong)):
        assert resp.status_code == 401 and resp.json()["error"]["code"] == 190
        assert resp.headers["WWW-Authenticate"].startswith("OAuth")
    right = {"Authorization": "Bearer the-right-token"}
    assert delete(http, sandbox, headers=right, name="order_update").json() == {"success": True}


# -- edit --------------------------------------------------------------------------------------------------------
def test_edit_goes_pending_then_is_reviewed_with_a_webhook(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, template_review_ms=300)
    template_id = create(http, sandbox)
    new = body("Hello {{1}}, your order {{2}} is on its way")
    resp = edit(http, sandbox, template_id, {"components": new, "category": "UTILITY"})
    edited_at = time.monotonic()
    assert resp.status_code == 200 and resp.json() == {"success": True}
    now = listed(http, sandbox)[("order_update", "en_US")]
    assert now["status"] == "PENDING" and now["components"] == new and now["id"] == template_id
    configure(http, sandbox, strict_templates=True)
    assert template_send(http, sandbox).json()["error"]["code"] == 132001      # in review: not sendable

    hook = receiver.wait_for(1)[0]
    change = json.loads(hook["body"])["entry"][0]["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"]["event"] == "APPROVED" and change["value"]["message_template_id"] == int(template_id)
    assert hook["at"] - edited_at >= 0.25          # the review waited template_review_ms
    assert listed(http, sandbox)[("order_update", "en_US")]["status"] == "APPROVED"
    assert template_send(http, sandbox).status_code == 200
    assert http.get(f"{sandbox.url}/_sandbox/stats").json()["counts"]["templates_edited"] == 1


def test_edit_review_follows_template_status(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, template_review_ms=0)
    template_id = create(http, sandbox)
    configure(http, sandbox, scope=WABA, template_status="PENDING")
    assert edit(http, sandbox, template_id, {"components": body("v2 {{1}} {{2}}")}).status_code == 200
    wait_idle(http, sandbox)
    assert listed(http, sandbox)[("order_update", "en_US")]["status"] == "PENDING"
    assert receiver.requests == []     # stays in review until moved by hand
    moved = http.post(f"{sandbox.url}/_sandbox/templates/{template_id}/status", json={"status": "REJECTED"})
    assert moved.json()["status"] == "REJECTED"
    configure(http, sandbox, scope=WABA, template_status="REJECTED")
    assert edit(http, sandbox, template_id, {"components": body("v3 {{1}} {{2}}")}).status_code == 200
    wait_idle(http, sandbox)
    events = [json.loads(r["body"])["entry"][0]["changes"][0]["value"]["event"] for r in receiver.wait_for(2)]
    assert events == ["REJECTED", "REJECTED"]
    assert listed(http, sandbox)[("order_update", "en_US")]["status"] == "REJECTED"


def test_review_of_a_deleted_template_does_nothing(http, make_sandbox, receiver):
    sandbox = make_sandbox(gateway_url=receiver.url, app_secret=APP_SECRET, template_review_ms=200)
    template_id = create(http, sandbox)
    assert edit(http, sandbox, template_id, {"components": body("v2 {{1}} {{2}}")}).status_code == 200
    assert delete(http, sandbox, name="order_update").status_code == 200
    wait_idle(http, sandbox)
    assert receiver.requests == [] and listed(http, sandbox) == {}


@pytest.mark.parametrize("status", ["PENDING", "DISABLED", "IN_APPEAL"])
def test_edit_refused_unless_approved_rejected_or_paused(http, sandbox, status):
    template_id = create(http, sandbox)
    http.post(f"{sandbox.url}/_sandbox/templates/{template_id}/status", json={"status": status})
    error = refused(edit(http, sandbox, template_id, {"components": body("v2 {{1}} {{2}}")}),
                    f"status is {status}, which does not allow edits")
    assert error["error_user_title"] == "Template can't be edited"
    assert listed(http, sandbox)[("order_update", "en_US")]["components"] == body()


def test_approved_category_is_fixed_but_rejected_may_change(http, sandbox):
    template_id = create(http, sandbox)
    refused(edit(http, sandbox, template_id, {"category": "MARKETING", "components": body()}),
            "category of an approved template can't be edited")
    assert listed(http, sandbox)[("order_update", "en_US")]["category"] == "UTILITY"
    http.post(f"{sandbox.url}/_sandbox/templates/{template_id}/status", json={"status": "REJECTED"})
    assert edit(http, sandbox, template_id, {"category": "marketing"}).status_code == 200
    assert listed(http, sandbox)[("order_update", "en_US")]["category"] == "MARKETING"


def test_approved_edits_once_a_day_and_ten_in_thirty_days(http, sandbox):
    template_id = create(http, sandbox)
    assert edit(http, sandbox, template_id, {"components": body("v2 {{1}} {{2}}")}).status_code == 200
    wait_idle(http, sandbox)
    assert listed(http, sandbox)[("order_update", "en_US")]["status"] == "APPROVED"
    error = refused(edit(http, sandbox, template_id, {"components": body("v3 {{1}} {{2}}")}), "once in 24 hours")
    assert error["error_user_title"] == "Edit limit reached"
    assert listed(http, sandbox)[("order_update", "en_US")]["components"] == body("v2 {{1}} {{2}}")

    # Paused (or rejected) templates may be edited without limit, and those edits do not count.
    http.post(f"{sandbox.url}/_sandbox/templates/{template_id}/status", json={"status": "PAUSED"})
    for n in range(3):
        assert edit(http, sandbox, template_id, {"components": body(f"p{n} {{{{1}}}} {{{{2}}}}")}).status_code == 200
        http.post(f"{sandbox.url}/_sandbox/templates/{template_id}/status", json={"status": "PAUSED"})

    # The store keeps when each approved edit happened: move them back in time instead of waiting days.
    store = sandbox.sandbox.store
    now = time.time()
    store.update_template(template_id, lambda t: t.update(status="APPROVED", _edits=[now - (2 + n) * DAY
                                                                                      for n in range(9)]))
    assert edit(http, sandbox, template_id, {"components": body("v4 {{1}} {{2}}")}).status_code == 200
    store.update_template(template_id, lambda t: t.update(status="APPROVED", _edits=[now - (2 + n) * DAY
                                                                                      for n in range(10)]))
    refused(edit(http, sandbox, template_id, {"components": body("v5 {{1}} {{2}}")}), "10 times in 30 days")
    store.update_template(template_id, lambda t: t.update(_edits=[now - (21 + n) * DAY for n in range(10)]))
    assert edit(http, sandbox, template_id, {"components": body("v5 {{1}} {{2}}")}).status_code == 200


@pytest.mark.parametrize("doc, words", [
    ({}, "The parameter components is required"),
    ({"components": []}, "components"),
    ({"components": [{"type": "FOOTER", "text": "x"}]}, "BODY"),
    ({"category": "PROMO"}, "category"),
    ({"components": body(), "name": "renamed"}, "name"),
    ({"components": body(), "language": "fr"}, "language"),
    ({"components": body(), "message_send_ttl_seconds": "soon"}, "message_send_ttl_seconds"),
])
def test_edit_body_errors(http, sandbox, doc, words):
    template_id = create(http, sandbox)
    resp = edit(http, sandbox, template_id, doc)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] in (100, 131009) and words in error["error_data"]["details"]
    assert listed(http, sandbox)[("order_update", "en_US")]["status"] == "APPROVED"


def test_edit_unknown_template_and_routes_do_not_clash(http, sandbox):
    for object_id in ("123456789012345", "not_a_template"):
        resp = edit(http, sandbox, object_id, {"components": body()})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == 100
        assert resp.json()["error"]["error_subcode"] == 33
    # The send, media and templates paths next to it still answer as before.
    assert cloud_send(http, sandbox, {"messaging_product": "whatsapp", "to": "34600000001", "type": "text",
                                      "text": {"body": "hi"}}).status_code == 200
    assert http.post(f"{sandbox.url}/v24.0/1/media", headers=AUTH,
                     files={"file": ("a", b"x", "text/plain")},
                     data={"messaging_product": "whatsapp"}).status_code == 200
    template_id = create(http, sandbox)
    ttl = edit(http, sandbox, template_id, {"components": body(), "message_send_ttl_seconds": 600})
    assert ttl.status_code == 200
    assert listed(http, sandbox)[("order_update", "en_US")]["message_send_ttl_seconds"] == 600

"""The templates catalog over the API: sync with Meta (the sandbox), list, read, preview, and live status."""
from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path

import pytest

from tests.gateway.test_send_end_to_end import control, gateway_url, sandbox  # noqa: F401  (fixtures)
from tests.webhooks.conftest import make_inbox

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp_templates"
if not FIXTURES.is_dir():
    pytest.skip(f"shared fixtures not found at {FIXTURES}", allow_module_level=True)


def _definition(name: str) -> dict:
    return json.loads((FIXTURES / f"pywa_template_create__{name}.json").read_text())


def _create_at_meta(sandbox, waba: str, definition: dict) -> dict:
    req = urllib.request.Request(f"{sandbox.url}/v24.0/{waba}/message_templates", method="POST",
                                 data=json.dumps(definition).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer t"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _setup(client, sandbox):
    inbox = make_inbox(client)
    waba = f"WABA{secrets.randbelow(10**9)}"
    ch = inbox.channel("whatsapp", group_id=waba, settings={"api_base_url": sandbox.url})
    made = {name: _create_at_meta(sandbox, waba, _definition(name))
            for name in ("order_confirmation", "order_delivery_update")}
    _create_at_meta(sandbox, waba, {**_definition("order_confirmation"), "language": "es"})
    return inbox, ch, waba, made


def test_sync_lists_meta_templates_with_status(client, sandbox):
    inbox, ch, waba, made = _setup(client, sandbox)
    r = inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]})
    assert r.status_code == 200, r.json
    assert r.json == {"waba_id": waba, "pulled": 3}
    listed = inbox.api("GET", f"/v1/templates?channel_id={ch['id']}").json["data"]
    assert sorted((t["name"], t["language"]) for t in listed) == [
        ("order_confirmation", "en_US"), ("order_confirmation", "es"), ("order_delivery_update", "en_US")]
    one = [t for t in listed if t["name"] == "order_confirmation" and t["language"] == "en_US"][0]
    assert one["status"] == "APPROVED" and one["sendable"] and one["meta_id"] == made["order_confirmation"]["id"]
    assert one["definition"]["components"][1]["type"] == "BODY"
    # A second sync updates in place.
    assert inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]}).json["pulled"] == 3
    assert len(inbox.api("GET", f"/v1/templates?channel_id={ch['id']}").json["data"]) == 3


def test_reading_a_template_names_the_languages_that_exist(client, sandbox):
    inbox, ch, _, _ = _setup(client, sandbox)
    inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]})
    got = inbox.api("GET", f"/v1/templates/order_confirmation?channel_id={ch['id']}&language=es")
    assert got.status_code == 200 and got.json["language"] == "es"
    missing = inbox.api("GET", f"/v1/templates/order_confirmation?channel_id={ch['id']}&language=fr")
    assert missing.status_code == 404 and missing.json["languages"] == {"en_US": "APPROVED", "es": "APPROVED"}
    assert "en_US, es" in missing.json["detail"]
    unknown = inbox.api("GET", f"/v1/templates/no_such_thing?channel_id={ch['id']}&language=es")
    assert unknown.status_code == 404 and unknown.json["type"].endswith("/template-not-found")


def test_preview_renders_or_names_every_parameter_problem(client, sandbox):
    inbox, ch, _, _ = _setup(client, sandbox)
    inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]})
    ok = inbox.api("POST", "/v1/templates/order_confirmation/preview", json={
        "channel_id": ch["id"], "language": "en_US",
        "parameters": {"header": {"type": "document", "document": {"link": "https://example.com/r.pdf"}},
                       "body": ["Pablo", "860198-230332"]}})
    assert ok.status_code == 200, ok.json
    assert ok.json["cloud_api"]["name"] == "order_confirmation"
    assert ok.json["cloud_api"]["language"]["code"] == "en_US"
    assert "Thank you for your order, Pablo!" in ok.json["text"] and "860198-230332" in ok.json["sms_text"]
    bad = inbox.api("POST", "/v1/templates/order_confirmation/preview", json={
        "channel_id": ch["id"], "language": "en_US", "parameters": {"body": ["Pablo"]}})
    assert bad.status_code == 422 and bad.json["type"].endswith("/template-parameters")
    named = {e["parameter"] for e in bad.json["errors"]}
    assert "header" in named and any("{{2}}" in p for p in named)


def test_meta_pausing_a_template_shows_at_once(client, sandbox):
    inbox, ch, _, made = _setup(client, sandbox)
    inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]})
    control(sandbox, f"/_sandbox/templates/{made['order_delivery_update']['id']}/status",
            {"status": "PAUSED", "reason": "LOW_QUALITY"})
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    inbox.drain()
    got = inbox.api("GET", f"/v1/templates/order_delivery_update?channel_id={ch['id']}&language=en_US").json
    assert got["status"] == "PAUSED" and got["status_reason"] == "LOW_QUALITY" and not got["sendable"]


def test_sync_says_what_to_fix(client, sandbox):
    inbox = make_inbox(client)
    no_waba = inbox.channel("whatsapp", settings={"api_base_url": sandbox.url})
    r = inbox.api("POST", "/v1/templates/sync", json={"channel_id": no_waba["id"]})
    assert r.status_code == 422 and "group_id" in r.json["detail"]
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}")
    r = inbox.api("POST", "/v1/templates/sync", json={"channel_id": sms["id"]})
    assert r.status_code == 422 and "WhatsApp" in r.json["detail"]
    waba = f"WABA{secrets.randbelow(10**9)}"
    ch = inbox.channel("whatsapp", group_id=waba, settings={"api_base_url": sandbox.url})
    control(sandbox, "/_sandbox/config", {"access_token": "the-real-one"})
    r = inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]})
    assert r.status_code == 502 and r.json["provider_code"] == "190" and "Meta answered 401" in r.json["detail"]
    assert inbox.api("POST", "/v1/templates/sync", json={}).status_code == 422
    assert inbox.api("GET", "/v1/templates").status_code == 400


# --- sending through the catalog (the send gate's template rules) -------------------------------------

def _synced(client, sandbox):
    inbox, ch, waba, made = _setup(client, sandbox)
    assert inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]}).status_code == 200
    return inbox, ch, waba, made


def _send_template(inbox, ch, **template):
    return inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "to": {"address": "+34600000810"},
                                                   "type": "template", "template": template})


def _outbound(inbox) -> int:
    from gateway import db
    with db.connection() as c:
        return c.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND direction = 'outbound'",
                         (inbox.account_id,)).fetchone()["n"]


def test_a_template_send_is_rendered_from_the_catalog_and_shows_what_the_customer_sees(client, sandbox):
    from tests.gateway.test_send_end_to_end import received, wait_for
    inbox, ch, _, _ = _synced(client, sandbox)
    r = _send_template(inbox, ch, name="order_confirmation", language="en_US", parameters={
        "header": {"type": "document", "document": {"link": "https://example.com/r.pdf"}},
        "body": ["Pablo", "860198-230332"]})
    assert r.status_code == 202, r.json
    assert "Thank you for your order, Pablo!" in r.json["text"] and "[Contact Support]" in r.json["text"]
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{r.json['id']}").json["status"] in (
        "sent", "delivered", "read"), inbox, what="template sent")
    [got] = [m for m in received(sandbox) if m["http_status"] == 200]
    sent = got["body"]["template"]
    assert sent["name"] == "order_confirmation" and sent["language"]["code"] == "en_US"
    body = [c for c in sent["components"] if c["type"] == "body"][0]
    assert [p["text"] for p in body["parameters"]] == ["Pablo", "860198-230332"]


def test_template_refusals_name_the_rule_and_queue_nothing(client, sandbox):
    from tests.gateway.test_send_end_to_end import control
    inbox, ch, _, made = _synced(client, sandbox)
    missing = _send_template(inbox, ch, name="order_confirmation", language="en_US", parameters={"body": ["Pablo"]})
    assert missing.status_code == 422 and missing.json["type"].endswith("/template_parameters")
    assert any("{{2}}" in e["parameter"] for e in missing.json["errors"])
    assert all(e["pointer"] == "/template/parameters" for e in missing.json["errors"])
    french = _send_template(inbox, ch, name="order_confirmation", language="fr", parameters=["a", "b"])
    assert french.status_code == 404 and french.json["type"].endswith("/template_not_found")
    assert french.json["languages"] == {"en_US": "APPROVED", "es": "APPROVED"}
    unknown = _send_template(inbox, ch, name="no_such_template", language="en_US", parameters=[])
    assert unknown.status_code == 404 and "sync" in unknown.json["detail"]
    control(sandbox, f"/_sandbox/templates/{made['order_delivery_update']['id']}/status",
            {"status": "DISABLED", "reason": "LOW_QUALITY"})
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    inbox.drain()
    disabled = _send_template(inbox, ch, name="order_delivery_update", language="en_US", parameters=[])
    assert disabled.status_code == 422 and disabled.json["type"].endswith("/template_not_sendable")
    assert "DISABLED (LOW_QUALITY)" in disabled.json["detail"]
    both = _send_template(inbox, ch, name="order_confirmation", language="en_US", parameters=["a"],
                          components=[{"type": "body", "parameters": []}])
    assert both.status_code == 422 and both.json["errors"][0]["pointer"] == "/template/parameters"
    assert _outbound(inbox) == 0


def test_without_a_synced_catalog_components_pass_and_parameters_ask_for_a_sync(client, sandbox):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp", group_id=f"WABA{secrets.randbelow(10**9)}", settings={"api_base_url": sandbox.url})
    raw = _send_template(inbox, ch, name="anything", language="es", components=[
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}])
    assert raw.status_code == 202, raw.json
    asks = _send_template(inbox, ch, name="anything", language="es", parameters=["Ana"])
    assert asks.status_code == 409 and asks.json["type"].endswith("/template_catalog_not_synced")


def test_a_queued_send_of_a_template_meta_then_paused_fails_with_that_reason(client, sandbox):
    from tests.gateway.test_send_end_to_end import control, drain_sends, received
    inbox, ch, _, made = _synced(client, sandbox)
    queued = _send_template(inbox, ch, name="order_confirmation", language="en_US", parameters={
        "header": {"type": "document", "document": {"link": "https://example.com/r.pdf"}},
        "body": ["Pablo", "860198-230332"]})
    assert queued.status_code == 202, queued.json
    # Meta pauses it before the worker gets to the message.
    control(sandbox, f"/_sandbox/templates/{made['order_confirmation']['id']}/status",
            {"status": "PAUSED", "reason": "LOW_QUALITY"})
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    inbox.drain()
    drain_sends(inbox, rounds=2)
    failed = inbox.api("GET", f"/v1/messages/{queued.json['id']}").json
    assert failed["status"] == "failed" and failed["error"]["code"] == "template_not_sendable"
    assert "PAUSED (LOW_QUALITY)" in failed["error"]["reason"]
    assert [m for m in received(sandbox) if m["http_status"] == 200] == []   # never reached Meta

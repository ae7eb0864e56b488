"""Templates beyond sync: submitting to Meta (the sandbox), picking the translation for the contact,
Meta's quality/category/components webhooks, and the same template sent as text on SMS and Messenger."""
from __future__ import annotations

import copy
import secrets
import time

from tests.gateway.test_send_end_to_end import control, gateway_url, received, sandbox, wait_for  # noqa: F401
from tests.gateway.test_templates_api import _definition, _setup, _synced
from tests.webhooks.conftest import make_inbox

GOOD = {"name": "cita_recordatorio", "language": "es", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hola {{1}}, te esperamos el {{2}}.",
                        "example": {"body_text": [["Ana", "lunes"]]}},
                       {"type": "FOOTER", "text": "Clínica Sol"},
                       {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Confirmo"},
                                                       {"type": "QUICK_REPLY", "text": "Cambiar cita"}]}]}


def _whatsapp(client, sandbox):
    inbox = make_inbox(client)
    waba = f"WABA{secrets.randbelow(10**9)}"
    return inbox, inbox.channel("whatsapp", group_id=waba, settings={"api_base_url": sandbox.url}), waba


def _listed(sandbox, waba) -> list[dict]:
    import json
    import urllib.request
    req = urllib.request.Request(f"{sandbox.url}/v24.0/{waba}/message_templates?limit=100",
                                 headers={"Authorization": "Bearer t"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["data"]


# --- submitting ---------------------------------------------------------------------------------------

def test_an_invalid_definition_lists_every_problem_and_reaches_nobody(client, sandbox):
    inbox, ch, waba = _whatsapp(client, sandbox)
    bad = dict(GOOD, name="Cita Recordatorio", components=[
        {"type": "BODY", "text": "{{1}} te esperamos el {{3}}", "example": {"body_text": [["Ana", "lunes"]]}}])
    r = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **bad})
    assert r.status_code == 422 and r.json["type"].endswith("/invalid-template")
    rules = {e["rule"] for e in r.json["errors"]}
    assert "name_invalid" in rules and len(r.json["errors"]) >= 3
    assert all(e["pointer"].startswith("/") for e in r.json["errors"])
    assert _listed(sandbox, waba) == []
    assert inbox.api("GET", f"/v1/templates?channel_id={ch['id']}").json["data"] == []


def test_a_valid_definition_is_submitted_once_and_kept_in_the_catalog(client, sandbox):
    inbox, ch, waba = _whatsapp(client, sandbox)
    control(sandbox, "/_sandbox/config", {"template_status": "PENDING"})
    r = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **GOOD})
    assert r.status_code == 201, r.json
    assert r.json["result"] == "created" and r.json["template"]["status"] == "PENDING"
    assert r.json["template"]["meta_id"] and not r.json["template"]["sendable"]
    [at_meta] = _listed(sandbox, waba)
    assert at_meta["name"] == "cita_recordatorio" and at_meta["id"] == r.json["template"]["meta_id"]
    again = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **GOOD})
    assert again.status_code == 200 and again.json["result"] == "unchanged"
    changed = copy.deepcopy(GOOD)
    changed["components"][0]["text"] = "Hola {{1}}, tu cita es el {{2}}."
    clash = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **changed})
    assert clash.status_code == 409 and "edit" in clash.json["detail"]
    assert len(_listed(sandbox, waba)) == 1
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}")
    r = inbox.api("POST", "/v1/templates", json={"channel_id": sms["id"], **GOOD})
    assert r.status_code == 422 and "WhatsApp" in r.json["detail"]
    assert inbox.api("POST", "/v1/templates", json=GOOD).json["errors"][0]["pointer"] == "/channel_id"


def test_meta_refusing_a_submission_is_a_502_with_its_code(client, sandbox):
    inbox, ch, waba = _whatsapp(client, sandbox)
    control(sandbox, "/_sandbox/config", {"access_token": "the-real-one"})
    r = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **GOOD})
    assert r.status_code == 502 and r.json["provider_code"] == "190"
    assert inbox.api("GET", f"/v1/templates?channel_id={ch['id']}").json["data"] == []


# --- choosing the translation -------------------------------------------------------------------------

def _contact(inbox, phone: str, language: str | None) -> str:
    r = inbox.api("POST", "/v1/contacts", json={"name": "Cliente", "language": language,
                                                "identities": [{"kind": "phone", "address": phone}]})
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_without_a_language_the_contacts_then_the_accounts_translation_is_sent(client, sandbox):
    inbox, ch, _, _ = _synced(client, sandbox)   # order_confirmation in en_US and es
    params = {"header": {"type": "document", "document": {"link": "https://example.com/r.pdf"}},
              "body": ["Pablo", "860198-230332"]}

    def send(contact):
        return inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact,
                                                       "type": "template", "template": {
                                                           "name": "order_confirmation", "parameters": params}})

    mexican = send(_contact(inbox, "+34600000901", "es_MX"))
    assert mexican.status_code == 202, mexican.json
    assert mexican.json["content"]["language"] == "es"
    german = _contact(inbox, "+34600000902", "de")
    refused = send(german)
    assert refused.status_code == 422 and refused.json["type"].endswith("/template_language_unavailable")
    assert refused.json["languages"] == {"en_US": "APPROVED", "es": "APPROVED"}
    assert "default_language" in refused.json["detail"]
    assert inbox.api("PATCH", "/v1/account", json={"default_language": "en"}).json["default_language"] == "en"
    english = send(german)
    assert english.status_code == 202 and english.json["content"]["language"] == "en_US"
    bad = inbox.api("PATCH", "/v1/account", json={"default_language": "English"})
    assert bad.status_code == 422 and bad.json["errors"][0]["pointer"] == "/default_language"


def test_a_paused_translation_is_not_picked(client, sandbox):
    inbox, ch, _, made = _synced(client, sandbox)
    es_id = [t for t in _listed(sandbox, ch["group_id"]) if t["name"] == "order_confirmation"
             and t["language"] == "es"][0]["id"]
    control(sandbox, f"/_sandbox/templates/{es_id}/status", {"status": "PAUSED", "reason": "LOW_QUALITY"})
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    inbox.drain()
    inbox.api("PATCH", "/v1/account", json={"default_language": "en_US"})
    r = inbox.api("POST", "/v1/messages", json={
        "channel_id": ch["id"], "contact_id": _contact(inbox, "+34600000903", "es"), "type": "template",
        "template": {"name": "order_confirmation", "parameters": {
            "header": {"type": "document", "document": {"link": "https://example.com/r.pdf"}}, "body": ["A", "1"]}}})
    assert r.status_code == 202 and r.json["content"]["language"] == "en_US"


# --- Meta's template webhooks -------------------------------------------------------------------------

def _notice(inbox, ch, field: str, value: dict):
    inbox.post_meta("whatsapp", {"object": "whatsapp_business_account", "entry": [{
        "id": ch["group_id"], "time": int(time.time()), "changes": [{"field": field, "value": value}]}]})
    inbox.drain()


def test_quality_category_and_components_updates_reach_the_catalog(client, sandbox):
    inbox, ch, _, made = _synced(client, sandbox)
    meta_id = int(made["order_delivery_update"]["id"])
    who = {"message_template_id": meta_id, "message_template_name": "order_delivery_update",
           "message_template_language": "en_US"}
    _notice(inbox, ch, "message_template_quality_update",
            {**who, "previous_quality_score": "GREEN", "new_quality_score": "YELLOW"})
    _notice(inbox, ch, "template_category_update", {**who, "new_category": "MARKETING"})
    _notice(inbox, ch, "message_template_components_update",
            {**who, "message_template_element": "Your order {{1}} is on its way!",
             "message_template_footer": "Thanks for shopping"})
    got = inbox.api("GET", f"/v1/templates/order_delivery_update?channel_id={ch['id']}&language=en_US").json
    assert got["quality_score"] == "YELLOW" and got["category"] == "MARKETING"
    body = [c for c in got["definition"]["components"] if c["type"] == "BODY"][0]
    footer = [c for c in got["definition"]["components"] if c["type"] == "FOOTER"][0]
    assert body["text"] == "Your order {{1}} is on its way!" and footer["text"] == "Thanks for shopping"
    preview = inbox.api("POST", "/v1/templates/order_delivery_update/preview", json={
        "channel_id": ch["id"], "language": "en_US", "parameters": {
            "header": {"type": "location", "location": {"latitude": 40.4, "longitude": -3.7, "name": "Almacén",
                                                                 "address": "Calle Mayor 1"}}, "body": ["A-17"]}})
    assert preview.status_code == 200, preview.json
    assert "Your order A-17 is on its way!" in preview.json["text"]


# --- other channels -----------------------------------------------------------------------------------

def _catalog_with(inbox, ch, definition):
    r = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **definition})
    assert r.status_code == 201, r.json


def test_a_template_goes_to_sms_as_text_with_numbered_options(client, sandbox):
    inbox, wa, _ = _whatsapp(client, sandbox)
    _catalog_with(inbox, wa, GOOD)
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}", settings={"api_base_url": sandbox.url})
    r = inbox.api("POST", "/v1/messages", json={"channel_id": sms["id"], "to": {"address": "+34600000904"},
                                                "type": "template", "template": {
                                                    "name": "cita_recordatorio", "language": "es",
                                                    "parameters": ["Ana", "martes 3"]}})
    assert r.status_code == 202, r.json
    assert r.json["kind"] == "text" and r.json["content"]["template"] == {"name": "cita_recordatorio",
                                                                          "language": "es"}
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{r.json['id']}").json["status"] in ("sent", "delivered"),
             inbox, what="sms template sent")
    [got] = [m for m in received(sandbox) if m["http_status"] == 201]
    body = got["body"]["Body"]
    assert body.startswith("Hola Ana, te esperamos el martes 3.") and "1. Confirmo\n2. Cambiar cita" in body
    missing = inbox.api("POST", "/v1/messages", json={"channel_id": sms["id"], "to": {"address": "+34600000904"},
                                                      "type": "template", "template": {
                                                          "name": "cita_recordatorio", "language": "es",
                                                          "parameters": ["Ana"]}})
    assert missing.status_code == 422 and missing.json["type"].endswith("/template_parameters")
    unknown = inbox.api("POST", "/v1/messages", json={"channel_id": sms["id"], "to": {"address": "+34600000904"},
                                                      "type": "template", "template": {"name": "nada", "language": "es"}})
    assert unknown.status_code == 404


def test_a_template_goes_to_messenger_with_quick_replies(client, sandbox):
    inbox, wa, _ = _whatsapp(client, sandbox)
    _catalog_with(inbox, wa, GOOD)
    page = inbox.channel("messenger", settings={"api_base_url": sandbox.url})
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1, "messaging": [
        {"sender": {"id": "PSID-tpl"}, "recipient": {"id": page["external_id"]},
         "timestamp": int(time.time() * 1000), "message": {"mid": "m_tpl", "text": "hola"}}]}]})
    inbox.drain()
    contact = [t for t in inbox.threads() if t["channel_kind"] == "messenger"][0]["contact_id"]
    r = inbox.api("POST", "/v1/messages", json={"channel_id": page["id"], "contact_id": contact, "type": "template",
                                                "template": {"name": "cita_recordatorio", "language": "es",
                                                             "parameters": ["Ana", "martes 3"]}})
    assert r.status_code == 202, r.json
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{r.json['id']}").json["status"] in (
        "sent", "delivered", "read"), inbox, what="messenger template sent")
    [got] = [m for m in received(sandbox) if m["http_status"] == 200]
    message = got["body"]["message"]
    assert message["text"] == "Hola Ana, te esperamos el martes 3.\n\nClínica Sol"
    assert [q["title"] for q in message["quick_replies"]] == ["Confirmo", "Cambiar cita"]


def test_editing_and_deleting_a_template_reach_meta_and_the_catalog(client, sandbox):
    inbox, ch, waba = _whatsapp(client, sandbox)
    assert inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **GOOD}).status_code == 201
    english = dict(GOOD, language="en_US", components=[
        {"type": "BODY", "text": "Hi {{1}}, see you on {{2}}.", "example": {"body_text": [["Ana", "Monday"]]}}])
    assert inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **english}).status_code == 201
    changed = copy.deepcopy(GOOD)
    changed["components"][0]["text"] = "Hola {{1}}, tu cita es el {{2}}."
    edited = inbox.api("PUT", "/v1/templates/cita_recordatorio", json={"channel_id": ch["id"], **changed})
    assert edited.status_code == 200 and edited.json["result"] == "updated", edited.json
    assert edited.json["template"]["status"] == "PENDING"
    [es] = [t for t in _listed(sandbox, waba) if t["language"] == "es"]
    assert es["components"][0]["text"] == "Hola {{1}}, tu cita es el {{2}}."
    # Meta allows no edit while it reviews, and no category change of an approved template.
    changed["components"][0]["text"] = "Hola {{1}}, nos vemos el {{2}}."
    busy = inbox.api("PUT", "/v1/templates/cita_recordatorio", json={"channel_id": ch["id"], **changed})
    assert busy.status_code == 409 and "PENDING" in busy.json["detail"]
    recategorised = dict(english, category="MARKETING")
    refused = inbox.api("PUT", "/v1/templates/cita_recordatorio", json={"channel_id": ch["id"], **recategorised})
    assert refused.status_code == 409 and "category" in refused.json["detail"]
    renamed = inbox.api("PUT", "/v1/templates/otra", json={"channel_id": ch["id"], **english})
    assert renamed.status_code == 422 and renamed.json["errors"][0]["pointer"] == "/name"

    one = inbox.api("DELETE", f"/v1/templates/cita_recordatorio?channel_id={ch['id']}&language=en_US")
    assert one.status_code == 200 and one.json["deleted"] == 1
    assert [t["language"] for t in _listed(sandbox, waba)] == ["es"]
    rest = inbox.api("DELETE", f"/v1/templates/cita_recordatorio?channel_id={ch['id']}")
    assert rest.status_code == 200 and rest.json["deleted"] == 1
    assert _listed(sandbox, waba) == [] and inbox.api("GET", f"/v1/templates?channel_id={ch['id']}").json["data"] == []
    gone = inbox.api("DELETE", f"/v1/templates/cita_recordatorio?channel_id={ch['id']}")
    assert gone.status_code == 404

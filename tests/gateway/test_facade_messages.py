"""The Cloud API facade's send endpoint end to end: a Cloud API body posted to /graph goes through the send
gate and the send workers to the sandbox provider, which must receive what was sent (ids aside); the message
lands in the contact's history; refusals come in Meta's error envelope with Meta's codes."""
from __future__ import annotations

import copy
import secrets
import time

import pytest

from gateway import db
from gateway.facade import ids
from templates_catalog import store
from tests.gateway.test_send_end_to_end import (_setup, gateway_url, received, sandbox, wait_for)  # noqa: F401
from tests.webhooks.test_receiver import text as wa_text, wa_body

VERSION = "v21.0"


def graph(inbox, path, body=None, *, key=None, method="POST", headers=None):
    return inbox.client.open(f"/graph/{VERSION}{path}", method=method, json=body,
                             headers={"Authorization": f"Bearer {key or inbox.key}", **(headers or {})})


def customer_writes(inbox, ch, phone, *, ago_s=5, body="hola"):
    msg = wa_text(phone, body, ts=int(time.time()) - ago_s)
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg]))
    inbox.drain()
    return msg["id"]


def phone() -> str:
    return f"3460{secrets.randbelow(10**7):07d}"


def sent_to_provider(inbox, sandbox, n=1):
    return wait_for(lambda: len(received(sandbox)) >= n and received(sandbox), inbox, what=f"{n} at the provider")


def comparable(doc: dict) -> dict:
    """A Cloud API body less what the gateway sets itself: its own callback id, recipient_type, the '+'."""
    out = copy.deepcopy(doc)
    out.pop("biz_opaque_callback_data", None)
    out.pop("recipient_type", None)
    out["to"] = out["to"].lstrip("+")
    out.setdefault("type", "text")
    if out["type"] == "text":
        out["text"].setdefault("preview_url", False)
    if out.get("type") == "template":
        out["template"]["language"] = {"code": out["template"]["language"]["code"]}
        if not out["template"].get("components"):
            out["template"].pop("components", None)
    return out


INTERACTIVE_BUTTON = {"type": "button", "header": {"type": "text", "text": "Tu pedido"},
                      "body": {"text": "¿Lo confirmas?"}, "footer": {"text": "Tienda Sol"},
                      "action": {"buttons": [{"type": "reply", "reply": {"id": "si", "title": "Sí"}},
                                             {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}
INTERACTIVE_LIST = {"type": "list", "body": {"text": "Elige una cita"}, "action": {"button": "Ver horas", "sections": [
    {"title": "Lunes", "rows": [{"id": "l9", "title": "9:00", "description": "con Ana"}]},
    {"title": "Martes", "rows": [{"id": "m9", "title": "9:00"}]}]}}
INTERACTIVE_CTA = {"type": "cta_url", "body": {"text": "Sigue tu envío"},
                   "action": {"name": "cta_url", "parameters": {"display_text": "Ver", "url": "https://t.example/1"}}}
TEMPLATE_ALL_PARAMETERS = {
    "name": "order_update", "language": {"code": "en_US", "policy": "deterministic"}, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/box.png"}}]},
        {"type": "body", "parameters": [
            {"type": "text", "text": "Ana"},
            {"type": "currency", "currency": {"fallback_value": "$10", "code": "USD", "amount_1000": 10000}},
            {"type": "date_time", "date_time": {"fallback_value": "March 25"}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload",
                                                                                     "payload": "YES"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "abc123"}]}]}

BODIES = {
    "text": {"type": "text", "text": {"body": "¿Te ayudo con algo más?", "preview_url": True}},
    "text-without-type": {"text": {"body": "Meta reads a body without a type as text"}},
    "image": {"type": "image", "image": {"link": "https://example.com/factura.png", "caption": "tu factura"}},
    "video": {"type": "video", "video": {"link": "https://example.com/demo.mp4", "caption": "cómo se monta"}},
    "audio": {"type": "audio", "audio": {"link": "https://example.com/nota.ogg"}},
    "document": {"type": "document", "document": {"link": "https://example.com/f.pdf", "filename": "factura.pdf",
                                                  "caption": "marzo"}},
    "sticker": {"type": "sticker", "sticker": {"link": "https://example.com/ok.webp"}},
    "location": {"type": "location", "location": {"latitude": 40.4168, "longitude": -3.7038, "name": "Sol",
                                                  "address": "Puerta del Sol, Madrid"}},
    "contacts": {"type": "contacts", "contacts": [{"name": {"formatted_name": "Soporte", "first_name": "Soporte"},
                                                   "phones": [{"phone": "+34910000000", "type": "WORK"}]}]},
    "interactive-button": {"type": "interactive", "interactive": INTERACTIVE_BUTTON},
    "interactive-list": {"type": "interactive", "interactive": INTERACTIVE_LIST},
    "interactive-cta-url": {"type": "interactive", "interactive": INTERACTIVE_CTA},
    "template": {"type": "template", "template": TEMPLATE_ALL_PARAMETERS},
    "template-with-opaque-data": {"type": "template", "biz_opaque_callback_data": "order-A-1001",
                                  "template": {"name": "hello_world", "language": {"code": "en_US"}}},
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_every_cloud_api_body_reaches_the_provider_as_sent_and_lands_in_the_history(client, sandbox, name):
    inbox, ch = _setup(client, sandbox)
    to = phone()
    customer_writes(inbox, ch, to)
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+" + to, **BODIES[name]}
    r = graph(inbox, f"/{ch['external_id']}/messages", body)
    assert r.status_code == 200, r.json
    assert r.json["messaging_product"] == "whatsapp"
    assert r.json["contacts"] == [{"input": "+" + to, "wa_id": to}]
    wamid = r.json["messages"][0]["id"]
    message_id = ids.parse(wamid)
    assert message_id is not None

    got = sent_to_provider(inbox, sandbox)[0]["body"]
    expected = comparable(body)
    assert comparable(got) == expected
    assert got["biz_opaque_callback_data"] == str(message_id)   # the gateway's own, to settle unknown sends

    m = inbox.api("GET", f"/v1/messages/{message_id}").json
    assert m["direction"] == "outbound" and m["kind"] == expected["type"]
    history = inbox.api("GET", f"/v1/threads/{m['thread_id']}/messages").json["data"]
    assert str(message_id) in {x["id"] for x in history}
    if name == "template-with-opaque-data":
        assert m["content"]["biz_opaque_callback_data"] == "order-A-1001"


def test_replies_and_reactions_name_messages_by_their_wamids(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    to = phone()
    theirs = customer_writes(inbox, ch, to)
    path = f"/{ch['external_id']}/messages"
    reply = graph(inbox, path, {"messaging_product": "whatsapp", "to": to, "type": "text",
                                "context": {"message_id": theirs}, "text": {"body": "Te contesto"}})
    assert reply.status_code == 200, reply.json
    react = graph(inbox, path, {"messaging_product": "whatsapp", "to": to, "type": "reaction",
                                "reaction": {"message_id": theirs, "emoji": "👍"}})
    assert react.status_code == 200, react.json
    bodies = {b["type"]: b for b in (m["body"] for m in sent_to_provider(inbox, sandbox, 2))}
    assert bodies["text"]["context"] == {"message_id": theirs}
    assert bodies["reaction"]["reaction"] == {"message_id": theirs, "emoji": "👍"}

    # Our own message named by the id the facade gave for it: the provider gets its real wamid.
    ours = reply.json["messages"][0]["id"]
    provider_id = inbox.api("GET", f"/v1/messages/{ids.parse(ours)}").json["provider_message_id"]
    again = graph(inbox, path, {"messaging_product": "whatsapp", "to": to, "type": "reaction",
                                "reaction": {"message_id": ours, "emoji": "✅"}})
    assert again.status_code == 200, again.json
    last = sent_to_provider(inbox, sandbox, 3)[-1]["body"]
    assert last["reaction"] == {"message_id": provider_id, "emoji": "✅"}

    unknown = graph(inbox, path, {"messaging_product": "whatsapp", "to": to, "type": "text",
                                  "context": {"message_id": "wamid.unknown"}, "text": {"body": "x"}})
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == 100
    assert "context['message_id']" in unknown.json["error"]["message"]


def test_mark_as_read_and_typing_indicator(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    to = phone()
    theirs = customer_writes(inbox, ch, to)
    path = f"/{ch['external_id']}/messages"
    r = graph(inbox, path, {"messaging_product": "whatsapp", "status": "read", "message_id": theirs})
    assert r.status_code == 200 and r.json == {"success": True}
    twice = graph(inbox, path, {"messaging_product": "whatsapp", "status": "read", "message_id": theirs})
    assert twice.json == {"success": True}
    typing = graph(inbox, path, {"messaging_product": "whatsapp", "status": "read", "message_id": theirs,
                                 "typing_indicator": {"type": "text"}})
    assert typing.json == {"success": True}
    sent_to_provider(inbox, sandbox, 2)
    time.sleep(0.3)
    wait_for(lambda: True, inbox)
    bodies = [m["body"] for m in received(sandbox)]
    assert bodies == [{"messaging_product": "whatsapp", "status": "read", "message_id": theirs},
                      {"messaging_product": "whatsapp", "status": "read", "message_id": theirs,
                       "typing_indicator": {"type": "text"}}]


def test_an_idempotent_retry_returns_the_first_answer_and_sends_once(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    to = phone()
    customer_writes(inbox, ch, to)
    path = f"/{ch['external_id']}/messages"
    body = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "Tu pedido salió"}}
    first = graph(inbox, path, body, headers={"Idempotency-Key": "order-1-shipped"})
    again = graph(inbox, path, body, headers={"Idempotency-Key": "order-1-shipped"})
    assert first.status_code == again.status_code == 200 and first.json == again.json
    other = graph(inbox, path, {**body, "text": {"body": "otro"}}, headers={"Idempotency-Key": "order-1-shipped"})
    assert other.status_code == 409 and other.json["error"]["code"] == 100

    tagged = {**body, "text": {"body": "Factura lista"}, "biz_opaque_callback_data": "invoice-77"}
    one, two = graph(inbox, path, tagged), graph(inbox, path, tagged)
    assert one.json == two.json
    changed = graph(inbox, path, {**tagged, "text": {"body": "Factura corregida"}})
    assert changed.json["messages"][0]["id"] != one.json["messages"][0]["id"]
    sent_to_provider(inbox, sandbox, 3)
    time.sleep(0.3)
    wait_for(lambda: True, inbox)
    assert len(received(sandbox)) == 3


# --- refusals, per send-gate rule, in Meta's envelope ------------------------------------------------------

def _error(r, status, code):
    assert r.status_code == status, r.json
    error = r.json["error"]
    assert error["code"] == code, error
    assert error["type"] and error["message"] and error["fbtrace_id"]
    assert error["error_data"]["messaging_product"] == "whatsapp" and error["error_data"]["details"]
    return error


def _catalog(ch, waba, account_id):
    with db.connection() as conn:
        store.upsert_from_meta(conn, account_id=account_id, waba_id=waba, docs=[
            {"name": "oferta", "language": "es", "status": "APPROVED", "category": "MARKETING",
             "components": [{"type": "BODY", "text": "Hola {{1}}, 20% en {{2}}",
                             "example": {"body_text": [["Ana", "zapatos"]]}}]},
            {"name": "aviso", "language": "es", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "Tu pedido {{1}} está listo",
                             "example": {"body_text": [["A-1"]]}}]},
            {"name": "pausada", "language": "es", "status": "PAUSED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "Vuelve"}]}])
        conn.commit()


def _template(name, *values):
    return {"type": "template", "template": {"name": name, "language": {"code": "es"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}] if values else []}}


def test_the_send_gate_refuses_with_metas_codes_and_writes_nothing(client, sandbox):
    from tests.webhooks.conftest import make_inbox
    waba = f"WABA-{secrets.token_hex(4)}"
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp", group_id=waba, settings={"api_base_url": sandbox.url, "pair_interval_s": 0})
    _catalog(ch, waba, inbox.account_id)
    path = f"/{ch['external_id']}/messages"
    quiet, talking = phone(), phone()
    customer_writes(inbox, ch, quiet, ago_s=25 * 3600)     # the window closed an hour ago
    customer_writes(inbox, ch, talking)
    send = lambda to, **b: graph(inbox, path, {"messaging_product": "whatsapp", "to": to, **b})  # noqa: E731

    e = _error(send(quiet, type="text", text={"body": "¿Sigues ahí?"}), 400, 131047)
    assert e["error_data"]["gateway_rule"] == "outside_customer_service_window"
    assert "template" in e["error_data"]["details"]
    assert send(quiet, **_template("aviso", "A-1")).status_code == 200          # a template may go

    # Marketing needs an opt-in; a withdrawn one is an opt-out.
    e = _error(send(talking, **_template("oferta", "Ana", "zapatos")), 400, 131050)
    assert e["error_data"]["gateway_rule"] == "no_marketing_consent"
    for action in ("granted", "withdrawn"):
        body = {"channel_kind": "all", "purpose": "marketing", "action": action, "source": "web_form"}
        if action == "granted":
            body["proof"] = {"text": "Quiero ofertas", "text_version": "v1"}
        for cid in {t["contact_id"] for t in inbox.threads()}:
            assert inbox.api("POST", f"/v1/contacts/{cid}/consents", json=body).status_code == 201
    e = _error(send(talking, **_template("oferta", "Ana", "zapatos")), 400, 131050)
    assert e["error_data"]["gateway_rule"] == "opted_out"

    e = _error(send(talking, **_template("aviso")), 400, 132000)                  # one parameter missing
    assert e["error_data"]["gateway_rule"] == "template_parameters" and e["error_data"]["errors"]
    _error(send(talking, **_template("aviso", "A-1", "extra")), 400, 132000)
    _error(send(talking, **_template("no_existe")), 400, 132001)
    e = _error(send(talking, **_template("pausada")), 400, 132015)
    assert e["error_data"]["template_status"] == "PAUSED"
    _error(send(talking, type="text", text={"body": "x" * 4097}), 400, 100)

    assert inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"status": "disabled"}).status_code == 200
    _error(send(talking, type="text", text={"body": "hola"}), 400, 131031)

    with db.connection() as conn:   # a refusal writes nothing: only the template to the quiet customer
        assert conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND direction = 'outbound'",
                            (inbox.account_id,)).fetchone()["n"] == 1


def test_bodies_meta_would_refuse_get_code_100_naming_the_parameter(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    path = f"/{ch['external_id']}/messages"
    cases = [
        ({"to": "34600000001", "type": "text", "text": {"body": "x"}}, "messaging_product"),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, "to"),
        ({"messaging_product": "whatsapp", "to": "34600000001", "type": "text", "text": {}}, "text['body']"),
        ({"messaging_product": "whatsapp", "to": "34600000001", "type": "selfie"}, "type"),
        ({"messaging_product": "whatsapp", "to": "34600000001", "type": "image", "image": {}}, "image"),
        ({"messaging_product": "whatsapp", "to": "34600000001", "type": "template",
          "template": {"name": "x"}}, "template['language']['code']"),
        ({"messaging_product": "whatsapp", "to": "34600000001", "type": "interactive",
          "interactive": {"type": "button", "body": {"text": "x"}, "action": {"buttons": []}}},
         "interactive['action']['buttons']"),
        ({"messaging_product": "whatsapp", "to": "no es un número", "type": "text", "text": {"body": "x"}}, "to"),
        ({"messaging_product": "whatsapp", "status": "read"}, "message_id"),
    ]
    for body, param in cases:
        r = graph(inbox, path, body)
        e = _error(r, 400, 100)
        assert param in e["message"], (body, e)
    assert graph(inbox, path, None).json["error"]["code"] == 100
    assert len(received(sandbox)) == 0


def test_unknown_or_another_accounts_phone_number_id_does_not_exist(client, sandbox):
    from tests.webhooks.conftest import make_inbox
    inbox, ch = _setup(client, sandbox)
    other = make_inbox(client)
    body = {"messaging_product": "whatsapp", "to": "34600000001", "type": "text", "text": {"body": "x"}}
    for r in (graph(inbox, "/999999999/messages", body), graph(other, f"/{ch['external_id']}/messages", body)):
        e = _error(r, 400, 100)
        assert e["error_subcode"] == 33 and e["type"] == "GraphMethodException"
        assert ch["external_id"] not in e["error_data"]["details"]


def test_authentication_and_scopes_answer_in_metas_envelope(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    body = {"messaging_product": "whatsapp", "to": "34600000001", "type": "text", "text": {"body": "x"}}
    path = f"/graph/{VERSION}/{ch['external_id']}/messages"
    r = client.post(path, json=body)
    assert r.status_code == 401 and r.json["error"]["type"] == "OAuthException"
    r = client.post(path, json=body, headers={"Authorization": "Bearer gwk_nope"})
    assert r.status_code == 401 and r.json["error"]["code"] == 190
    reader = inbox.api("POST", "/v1/api-keys", json={"name": "ro", "scopes": ["messages:read"]}).json["key"]
    e = _error(graph(inbox, f"/{ch['external_id']}/messages", body, key=reader), 403, 10)
    assert "messages:send" in e["error_data"]["details"]
    bad_version = client.post(f"/graph/latest/{ch['external_id']}/messages", json=body,
                              headers={"Authorization": f"Bearer {inbox.key}"})
    assert bad_version.status_code == 400 and bad_version.json["error"]["code"] == 100
    for version in ("v18.0", "v24.0", "v99"):
        ok = client.post(f"/graph/{version}/{ch['external_id']}/messages", json={**body, "to": phone()},
                         headers={"Authorization": f"Bearer {inbox.key}"})
        assert ok.json["error"]["code"] == 131047   # reached the gate: every version is served alike


def test_sending_faster_than_the_number_can_for_too_long_is_130429_with_retry_after(client, sandbox, monkeypatch):
    monkeypatch.setenv("GATEWAY_FACADE_BACKLOG_S", "2")
    inbox, ch = _setup(client, sandbox, rate_per_s=1)   # one a second, two seconds ahead: a burst of two
    to = phone()
    customer_writes(inbox, ch, to)
    body = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "x"}}
    answers = [graph(inbox, f"/{ch['external_id']}/messages", {**body, "text": {"body": str(i)}}) for i in range(3)]
    assert [r.status_code for r in answers[:2]] == [200, 200]
    e = _error(answers[2], 429, 130429)
    assert int(answers[2].headers["Retry-After"]) >= 1 and e["error_data"]["is_transient"] is True
    time.sleep(1.1)
    assert graph(inbox, f"/{ch['external_id']}/messages", body).status_code == 200

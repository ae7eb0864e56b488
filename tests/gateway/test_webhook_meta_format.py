"""Webhook endpoints in Meta's format: an integration written for Meta's WhatsApp webhooks - here pywa's own Flask
handler, with its app-secret signature check and its phone-number and WABA filters, on a real HTTP server -
receives the gateway's inbound messages and its messages' statuses unchanged, once, in order. Inbound messages
go in as signed Meta webhooks, sends go out through the Cloud API facade to the sandbox provider, whose status
webhooks come back: real PostgreSQL, Redis, relay, delivery job and HTTP throughout."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import flask
import pytest
from pywa import WhatsApp
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server

from gateway import db, events
from gateway.facade import ids
from tests.gateway import test_send_end_to_end as e2e
from tests.gateway.test_keywords import _messenger, _sms
from tests.gateway.test_send_end_to_end import control, wait_for
from tests.gateway.test_webhook_endpoints import deliver
from tests.gateway.webhook_receiver import Hit, Receiver
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text as wa_text, wa_body

gateway_url, sandbox = e2e.gateway_url, e2e.sandbox   # the fixtures: the gateway served over HTTP, the sandbox
APP_SECRET = "integration-app-secret-0042"   # the integration's existing Meta app secret, kept unchanged
VERSION = "v21.0"


class Integration:
    """A Cloud API integration's webhook: pywa's Flask routes (GET handshake, POST with X-Hub-Signature-256
    checked against ``app_secret``), every request recorded raw with pywa's answer, every update pywa parsed."""

    def __init__(self, *, app_secret: str = APP_SECRET, phone_id: str | None = None, waba_id: str | None = None,
                 verify_token: str = "integration-verify-token"):
        self.app = flask.Flask(f"integration-{secrets.token_hex(3)}")
        self.hits: list[Hit] = []
        self.answers: list[int] = []
        self.messages: list = []
        self.statuses: list = []
        self.lock = threading.Lock()

        @self.app.after_request
        def _record(resp):
            if flask.request.method == "POST":
                with self.lock:
                    self.hits.append(Hit(flask.request.path, {k.lower(): v for k, v in flask.request.headers.items()},
                                         flask.request.get_data(cache=True), time.monotonic()))
                    self.answers.append(resp.status_code)
            return resp

        self.wa = WhatsApp(phone_id=phone_id, token="unused-no-calls-are-made", server=self.app,
                           webhook_endpoint="/hooks", verify_token=verify_token, app_secret=app_secret,
                           waba_id=waba_id)
        self.wa.on_message()(lambda client, msg: self.messages.append(msg))
        self.wa.on_message_status()(lambda client, status: self.statuses.append(status))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def bodies(self) -> list[dict]:
        with self.lock:
            return [h.json for h in self.hits]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def world(client, monkeypatch):
    """Accounts (Inbox) and integrations for a test; plain HTTP on loopback allowed, fast retries; every
    endpoint made is deleted afterwards, so later tests' delivery jobs never retry it."""
    monkeypatch.setenv("GATEWAY_WEBHOOK_ALLOW_HTTP", "1")
    monkeypatch.setenv("GATEWAY_WEBHOOK_RETRY_SCHEDULE", "0.05,0.05,0.05")
    made: list = []

    class World:
        def account(self):
            inbox = make_inbox(client)
            made.append(inbox)
            return inbox

        def integration(self, **kw) -> Integration:
            i = Integration(**kw)
            made.append(i)
            return i

    yield World()
    with db.connection() as conn:
        for m in made:
            if isinstance(m, Integration):
                m.close()
            else:
                conn.execute("DELETE FROM webhook_endpoints WHERE account_id = %s", (m.account_id,))


def whatsapp(inbox, sandbox=None):
    """A WhatsApp channel with its WABA id and display number, pointed at the sandbox when one is given."""
    settings = {"display_phone_number": "+15550001111", "pair_interval_s": 0}
    if sandbox is not None:
        settings["api_base_url"] = sandbox.url
    return inbox.channel("whatsapp", f"10{secrets.randbelow(10**12):012d}", group_id=f"WABA{secrets.token_hex(4)}",
                         settings=settings)


def meta_endpoint(inbox, url, **extra) -> dict:
    r = inbox.api("POST", "/v1/webhook-endpoints", json={"url": url, "format": "meta", **extra})
    assert r.status_code == 201, r.json
    return r.json


def customer(inbox, ch, *messages, phone="34600111222", name="Lucía Pérez", user_id=None):
    """The customer's messages, posted as Meta posts them (signed), and processed. Meta's cards carry the
    customer's business-scoped user id since 2025 (and pywa 4.5 requires one)."""
    card = {"profile": {"name": name}, "wa_id": phone, "user_id": user_id or f"ES.{int(phone) * 7919}"}
    r = inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=list(messages), contacts=[card],
                                            entry_id=ch["group_id"]))
    assert r.status_code == 200
    inbox.drain()


def says(phone, body, **extra):
    return wa_text(phone, body, ts=int(time.time()) - 3, **extra)


def graph(inbox, path, body):
    return inbox.client.open(f"/graph/{VERSION}{path}", method="POST", json=body,
                             headers={"Authorization": f"Bearer {inbox.key}"})


def signed_by(hit: Hit, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), hit.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, hit.headers.get("x-hub-signature-256", ""))


def value_of(body: dict) -> dict:
    [entry] = body["entry"]
    [change] = entry["changes"]
    assert change["field"] == "messages"
    return change["value"]


def wait_for_hits(integration: Integration, n: int, timeout: float = 10.0) -> list[Hit]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliver()
        with integration.lock:
            if len(integration.hits) >= n:
                return list(integration.hits)
        time.sleep(0.05)
    raise AssertionError(f"the integration got {len(integration.hits)} requests, not {n}")


# -- inbound ----------------------------------------------------------------------------------------------------

def test_a_customers_text_and_image_reach_the_integration_as_meta_sends_them(world):
    inbox = world.account()
    ch = whatsapp(inbox)
    app = world.integration(phone_id=ch["external_id"], waba_id=ch["group_id"])
    made = meta_endpoint(inbox, app.url, secret=APP_SECRET)
    assert made["format"] == "meta" and made["channel_ids"] is None and made["secret"] == APP_SECRET
    assert made["event_types"] == ["message.received", "message.sent", "message.status"]
    rx = Receiver()   # a standard endpoint of the same account still gets the gateway's own bodies
    try:
        standard = inbox.api("POST", "/v1/webhook-endpoints", json={"url": rx.url, "event_types": ["message.received"]})
        assert standard.status_code == 201 and standard.json["format"] == "standard"

        hola = says("34600111222", "¿Tenéis la talla 42? 👟")
        photo = {"from": "34600111222", "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(int(time.time()) - 2),
                 "type": "image", "image": {"id": "1479537139650973", "mime_type": "image/jpeg",
                                            "sha256": "jBT0G8PTpGvBvYvHQ6Rz0w0=", "caption": "esta"}}
        customer(inbox, ch, hola, photo, user_id="ES.13491208655302741918")
        hits = wait_for_hits(app, 2)
        rx.wait_for(2)
    finally:
        rx.close()

    assert app.answers == [200, 200] and all(signed_by(h, APP_SECRET) for h in hits)
    assert not signed_by(hits[0], "another-app-secret")
    assert all(h.headers["content-type"] == "application/json" for h in hits)
    # Meta's wire form: compact, non-ASCII escaped as \uXXXX.
    assert hits[0].body.isascii() and b"\\u00bf" in hits[0].body and b'\\ud83d\\udc5f"' in hits[0].body
    assert b'", "' not in hits[0].body and b'": ' not in hits[0].body

    text_body, image_body = (h.json for h in hits)
    assert text_body["object"] == "whatsapp_business_account" and text_body["entry"][0]["id"] == ch["group_id"]
    value = value_of(text_body)
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "15550001111", "phone_number_id": ch["external_id"]}
    assert value["contacts"] == [{"profile": {"name": "Lucía Pérez"}, "wa_id": "34600111222",
                                  "user_id": "ES.13491208655302741918"}]
    assert value["messages"] == [{"from": "34600111222", "id": hola["id"], "timestamp": hola["timestamp"],
                                  "type": "text", "text": {"body": "¿Tenéis la talla 42? 👟"}}]

    thread = inbox.threads()[0]
    [stored_image] = [m for m in inbox.messages(thread["id"]) if m["kind"] == "image"]
    [image] = value_of(image_body)["messages"]
    assert image["id"] == photo["id"] and image["type"] == "image"
    # The gateway's media id, which the facade's GET /graph/v{N}/{media-id} serves; the rest as Meta sent it.
    assert image["image"] == {"id": stored_image["media"][0]["id"], "mime_type": "image/jpeg",
                              "sha256": "jBT0G8PTpGvBvYvHQ6Rz0w0=", "caption": "esta"}

    # What pywa, the integration's own library, makes of them.
    first, second = app.messages
    assert first.text == "¿Tenéis la talla 42? 👟" and first.from_user.wa_id == "34600111222"
    assert first.from_user.name == "Lucía Pérez" and first.id == hola["id"]
    assert first.metadata.phone_number_id == ch["external_id"] and first.waba_id == ch["group_id"]
    assert second.image.id == stored_image["media"][0]["id"] and second.image.caption == "esta"

    standard_bodies = [Webhook(standard.json["secret"]).verify(h.body, h.headers) for h in rx.hits]
    assert [b["type"] for b in standard_bodies] == ["message.received"] * 2
    assert "object" not in standard_bodies[0] and standard_bodies[0]["content"]["text"] == "¿Tenéis la talla 42? 👟"


def test_a_generated_secret_signs_and_a_rotated_one_takes_over_at_once(world):
    inbox = world.account()
    ch = whatsapp(inbox)
    made = meta_endpoint(inbox, "http://127.0.0.1:9/unused")
    secret = made["secret"]
    assert secret.startswith("whsec_")
    app = world.integration(app_secret=secret, phone_id=ch["external_id"])
    assert inbox.api("PATCH", f"/v1/webhook-endpoints/{made['id']}", json={"url": app.url}).status_code == 200
    customer(inbox, ch, says("34600111333", "uno"), phone="34600111333")
    [hit] = wait_for_hits(app, 1)
    assert signed_by(hit, secret) and app.answers == [200]

    rotated = inbox.api("POST", f"/v1/webhook-endpoints/{made['id']}/rotate-secret",
                        json={"grace_period_s": 3600}).json
    customer(inbox, ch, says("34600111333", "dos"), phone="34600111333")
    hits = wait_for_hits(app, 2)
    # One signature only (Meta's header holds one): the newest secret's, even within the grace period.
    assert signed_by(hits[1], rotated["secret"]) and not signed_by(hits[1], secret)
    assert hits[1].headers["x-hub-signature-256"].count("sha256=") == 1
    assert app.answers[0] == 200 and set(app.answers[1:]) == {403}   # the integration still on the old secret
                                                                      # refuses it, as it should


def test_an_erased_customers_message_is_never_sent(world):
    inbox = world.account()
    ch = whatsapp(inbox)
    app = world.integration(phone_id=ch["external_id"])
    ep = meta_endpoint(inbox, app.url, secret=APP_SECRET)
    customer(inbox, ch, says("34600111444", "bórrame"), phone="34600111444")
    contact_id = inbox.threads()[0]["contact_id"]
    assert inbox.api("DELETE", f"/v1/contacts/{contact_id}").status_code in (200, 202, 204)
    deliver()
    assert app.hits == []
    [d] = inbox.api("GET", f"/v1/webhook-endpoints/{ep['id']}/deliveries").json["data"]
    assert d["state"] == "dead" and "erased" in d["last_error"]


# -- statuses ---------------------------------------------------------------------------------------------------

def test_a_sent_messages_statuses_arrive_in_order_under_the_facades_id_with_the_tracker(world, sandbox):
    inbox = world.account()
    ch = whatsapp(inbox, sandbox)
    app = world.integration(phone_id=ch["external_id"], waba_id=ch["group_id"])
    meta_endpoint(inbox, app.url, secret=APP_SECRET)
    phone = "34600222111"
    customer(inbox, ch, says(phone, "hola"), phone=phone)
    r = graph(inbox, f"/{ch['external_id']}/messages", {
        "messaging_product": "whatsapp", "to": phone, "type": "text", "text": {"body": "¿Te ayudo?"},
        "biz_opaque_callback_data": "order-77"})
    assert r.status_code == 200, r.json
    wamid = r.json["messages"][0]["id"]
    message_id = ids.parse(wamid)
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{message_id}").json["status"] == "read", inbox,
             what="read")
    hits = wait_for_hits(app, 4)   # the customer's message, then sent, delivered, read
    assert all(signed_by(h, APP_SECRET) for h in hits) and set(app.answers) == {200}

    statuses = [s for h in hits[1:] for s in value_of(h.json)["statuses"]]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["id"] for s in statuses} == {wamid}                    # what the facade answered the send with
    assert all(s["recipient_id"] == phone and s["biz_opaque_callback_data"] == "order-77" for s in statuses)
    assert all(s["timestamp"].isdigit() for s in statuses)
    assert value_of(hits[1].json)["contacts"][0]["wa_id"] == phone
    assert [(s.id, s.status.value, s.tracker) for s in app.statuses] == [
        (wamid, "sent", "order-77"), (wamid, "delivered", "order-77"), (wamid, "read", "order-77")]

    # A late 'delivered' (Meta does not promise order) moves nothing back, so nothing more is sent.
    provider_id = inbox.api("GET", f"/v1/messages/{message_id}").json["provider_message_id"]
    late = {"id": provider_id, "status": "delivered", "timestamp": str(int(time.time()) - 30),
            "recipient_id": phone}
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=[late]))
    inbox.drain()

    # The customer answers it, and reacts to it: both name it by the facade's id, not the provider's.
    reply = says(phone, "sí, gracias", context={"from": "15550001111", "id": provider_id})
    reaction = {"from": phone, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(int(time.time()) - 1),
                "type": "reaction", "reaction": {"message_id": provider_id, "emoji": "👍"}}
    unrelated = says(phone, "y otra cosa", context={"from": "15550001111", "id": "wamid.not-ours"})
    for m in (reply, reaction, unrelated):
        customer(inbox, ch, m, phone=phone)
    hits = wait_for_hits(app, 7)
    assert len(hits) == 7 and "statuses" not in value_of(hits[4].json)
    got = [value_of(h.json)["messages"][0] for h in hits[4:]]
    assert got[0]["context"] == {"from": "15550001111", "id": wamid} and got[0]["id"] == reply["id"]
    assert got[1]["reaction"] == {"message_id": wamid, "emoji": "👍"}
    assert got[2]["context"]["id"] == "wamid.not-ours"
    assert app.messages[-3].reply_to_message.id == wamid


def test_a_failed_status_carries_metas_errors(world, sandbox):
    inbox = world.account()
    ch = whatsapp(inbox, sandbox)
    app = world.integration(phone_id=ch["external_id"])
    meta_endpoint(inbox, app.url, secret=APP_SECRET, event_types=["message.status"])
    phone = "34600222333"
    customer(inbox, ch, says(phone, "hola"), phone=phone)
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131026, "async_failure": True})
    r = graph(inbox, f"/{ch['external_id']}/messages", {"messaging_product": "whatsapp", "to": phone,
                                                        "type": "text", "text": {"body": "¿Sigues ahí?"}})
    assert r.status_code == 200, r.json
    wamid = r.json["messages"][0]["id"]
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{ids.parse(wamid)}").json["status"] == "failed", inbox,
             what="failed")
    [hit] = wait_for_hits(app, 1)
    [status] = value_of(hit.json)["statuses"]
    assert status["id"] == wamid and status["status"] == "failed" and status["recipient_id"] == phone
    assert "biz_opaque_callback_data" not in status
    [error] = status["errors"]
    assert error["code"] == 131026 and error["title"] and error["message"] == error["title"]
    assert error["error_data"]["details"] == error["title"]
    [parsed] = app.statuses
    assert parsed.status.value == "failed" and parsed.error.code == 131026


# -- who gets what ----------------------------------------------------------------------------------------------

def test_another_accounts_meta_endpoint_gets_nothing(world):
    a, b = world.account(), world.account()
    ch_a = whatsapp(a)
    whatsapp(b)
    app_b = world.integration()
    meta_endpoint(b, app_b.url, secret=APP_SECRET)
    app_a = world.integration(phone_id=ch_a["external_id"])
    meta_endpoint(a, app_a.url, secret=APP_SECRET)
    customer(a, ch_a, says("34600333111", "solo para A"), phone="34600333111")
    wait_for_hits(app_a, 1)
    deliver()
    assert app_b.hits == []


def test_sms_and_messenger_never_reach_a_meta_endpoint(world):
    inbox = world.account()
    wa = whatsapp(inbox)
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}")
    page = inbox.channel("messenger")
    app = world.integration()
    ep = meta_endpoint(inbox, app.url, secret=APP_SECRET)
    _sms(inbox, sms, "hola por SMS")
    _messenger(inbox, page, "hola por Messenger")
    # Statuses of the other channels' messages, as their events are written.
    with db.connection() as conn:
        for ch in (sms, page):
            events.emit(conn, inbox.account_id, "message.status", {
                "message_id": str(uuid.uuid4()), "thread_id": str(uuid.uuid4()), "contact_id": str(uuid.uuid4()),
                "channel_id": ch["id"], "status": "delivered", "error_code": None, "reason": None,
                "at": datetime.now(timezone.utc).isoformat()})
        conn.commit()
    customer(inbox, wa, says("34600444111", "hola por WhatsApp"), phone="34600444111")
    [hit] = wait_for_hits(app, 1)
    assert value_of(hit.json)["messages"][0]["text"]["body"] == "hola por WhatsApp"
    deliver()
    assert len(app.hits) == 1
    # A replay picks the same: only the WhatsApp channel's events.
    since = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    r = inbox.api("POST", f"/v1/webhook-endpoints/{ep['id']}/replay", json={"since": since})
    assert r.status_code == 202 and r.json["queued"] == 1


def test_channel_ids_narrow_a_meta_endpoint_to_some_whatsapp_channels(world):
    inbox = world.account()
    one, two = whatsapp(inbox), whatsapp(inbox)
    app = world.integration()
    ep = meta_endpoint(inbox, app.url, secret=APP_SECRET, channel_ids=[one["id"]])
    assert ep["channel_ids"] == [one["id"]]
    assert inbox.api("GET", f"/v1/webhook-endpoints/{ep['id']}").json["channel_ids"] == [one["id"]]
    customer(inbox, two, says("34600555111", "por el dos"), phone="34600555111")
    customer(inbox, one, says("34600555111", "por el uno"), phone="34600555111")
    [hit] = wait_for_hits(app, 1)
    deliver()
    assert len(app.hits) == 1 and value_of(hit.json)["metadata"]["phone_number_id"] == one["external_id"]

    r = inbox.api("PATCH", f"/v1/webhook-endpoints/{ep['id']}", json={"channel_ids": None})
    assert r.status_code == 200 and r.json["channel_ids"] is None
    customer(inbox, two, says("34600555111", "otra vez por el dos"), phone="34600555111")
    hits = wait_for_hits(app, 2)
    assert value_of(hits[1].json)["metadata"]["phone_number_id"] == two["external_id"]
    listed = inbox.api("GET", "/v1/webhook-endpoints").json["data"]
    assert [(e["format"], e["channel_ids"]) for e in listed] == [("meta", None)]


# -- refusals and the handshake ---------------------------------------------------------------------------------

def test_bad_meta_endpoints_are_422s_naming_the_field(world):
    inbox, other = world.account(), world.account()
    wa = whatsapp(inbox)
    page = inbox.channel("messenger")
    theirs = whatsapp(other)
    url = "https://crm.example.com/meta"

    def refused(body, method="POST", path="/v1/webhook-endpoints"):
        r = inbox.api(method, path, json=body)
        assert r.status_code == 422, r.json
        return {e.get("field", e.get("pointer", "")).lstrip("/"): e["detail"] for e in r.json["errors"]}

    assert "format" in refused({"url": url, "format": "xml"})
    detail = refused({"url": url, "format": "meta", "event_types": ["message.received", "contact.created"]})
    assert "only message.received, message.sent, message.status" in detail["event_types"]
    assert "contact.created" in detail["event_types"]
    assert "whatsapp" in refused({"url": url, "format": "meta", "channel_ids": [page["id"]]})["channel_ids"].lower()
    assert theirs["id"] in refused({"url": url, "format": "meta", "channel_ids": [theirs["id"]]})["channel_ids"]
    assert "channel_ids" in refused({"url": url, "format": "meta", "channel_ids": []})
    assert any(k.startswith("channel_ids") for k in refused({"url": url, "format": "meta", "channel_ids": ["nope"]}))
    assert "secret" in refused({"url": url, "format": "meta", "secret": "short"})
    assert "include_content" in refused({"url": url, "format": "meta", "include_content": False})
    for field in ("channel_ids", "secret", "verify_token"):
        value = {"channel_ids": [wa["id"]], "secret": APP_SECRET, "verify_token": "vt"}[field]
        assert field in refused({"url": url, "event_types": ["message.received"], field: value})
    assert "event_types" in refused({"url": url})            # a standard endpoint still names its types

    standard = inbox.api("POST", "/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]}).json
    assert "channel_ids" in refused({"channel_ids": [wa["id"]]}, "PATCH", f"/v1/webhook-endpoints/{standard['id']}")
    meta = meta_endpoint(inbox, url, secret=APP_SECRET)
    path = f"/v1/webhook-endpoints/{meta['id']}"
    assert "event_types" in refused({"event_types": ["thread.created"]}, "PATCH", path)
    assert "channel_ids" in refused({"channel_ids": [page["id"]]}, "PATCH", path)
    narrowed = inbox.api("PATCH", path, json={"event_types": ["message.status"]})
    assert narrowed.status_code == 200 and narrowed.json["event_types"] == ["message.status"]
    assert inbox.api("PATCH", path, json={"event_types": ["*"]}).json["event_types"] == [
        "message.received", "message.sent", "message.status"]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM webhook_endpoints WHERE account_id = %s",
                            (inbox.account_id,)).fetchone()["n"] == 2


def test_metas_subscription_handshake_on_create(world):
    inbox = world.account()
    whatsapp(inbox)
    app = world.integration(verify_token="the-integrations-token")
    ok = inbox.api("POST", "/v1/webhook-endpoints", json={"url": app.url, "format": "meta", "secret": APP_SECRET,
                                                          "verify_token": "the-integrations-token"})
    assert ok.status_code == 201, ok.json and "verify_token" not in ok.json

    wrong = inbox.api("POST", "/v1/webhook-endpoints", json={"url": app.url, "format": "meta",
                                                             "verify_token": "not-the-token"})
    assert wrong.status_code == 422
    [error] = wrong.json["errors"]
    assert error["field"] == "url" and "did not answer" in error["detail"] and "403" in error["detail"]
    assert "not-the-token" not in json.dumps(wrong.json)

    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hooks"
    gone = inbox.api("POST", "/v1/webhook-endpoints", json={"url": closed, "format": "meta", "verify_token": "x"})
    assert gone.status_code == 422 and "could not be reached" in gone.json["errors"][0]["detail"]
    assert [e["id"] for e in inbox.api("GET", "/v1/webhook-endpoints").json["data"]] == [ok.json["id"]]

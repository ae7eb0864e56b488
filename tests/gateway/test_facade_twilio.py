"""The Twilio-shaped facade, driven by Twilio's own Python SDK: an integration that changes only its base URL
(``{gateway}/twilio``) and its credentials (AccountSid from GET /v1/account, a gateway API key as the auth token)
sends SMS, WhatsApp and media through the gateway's one send gate, reads messages back, gets Twilio's error
codes for the gateway's refusals, and receives status callbacks signed as Twilio signs them, which Twilio's own
RequestValidator accepts. Real parts throughout: the gateway served over HTTP, the sandbox provider (it answers
as Twilio and Meta do and sends their status webhooks back), PostgreSQL, Redis, RQ drains, relay and delivery."""
from __future__ import annotations

import secrets
import time
import uuid
from urllib.parse import parse_qsl

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from gateway import accounts, db, sweeper
from tests.gateway import test_send_end_to_end as e2e
from tests.gateway.test_keywords import _sms
from tests.gateway.test_send_end_to_end import received
from tests.gateway.test_webhook_endpoints import deliver
from tests.gateway.test_webhook_meta_format import customer, says, whatsapp
from tests.gateway.webhook_receiver import Receiver
from tests.webhooks.conftest import make_inbox

gateway_url, sandbox = e2e.gateway_url, e2e.sandbox   # the fixtures: the gateway served over HTTP, the sandbox


class GatewayHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, pointed at the gateway: the one change an integration makes to its base URL."""

    def __init__(self, base: str, headers: dict | None = None):
        super().__init__(timeout=15)
        self.base, self.extra = base.rstrip("/") + "/twilio", headers or {}

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        url = url.replace("https://api.twilio.com", self.base, 1)
        return super().request(method, url, params=params, data=data, headers={**(headers or {}), **self.extra},
                               auth=auth, timeout=timeout, allow_redirects=allow_redirects)


class Integration:
    """One account seen by a Twilio integration: its AccountSid, its auth token (a gateway API key), a client."""

    def __init__(self, inbox, base: str):
        self.inbox = inbox
        self.account_sid = inbox.api("GET", "/v1/account").json["twilio_account_sid"]
        with db.connection() as conn:
            _, self.token = accounts.create_api_key(conn, account_id=inbox.account_id, name="twilio integration",
                                                    scopes=["messages:send", "messages:read"], actor="test")
        self.base = base
        self.client = Client(self.account_sid, self.token, http_client=GatewayHttpClient(base))

    def with_headers(self, **headers) -> Client:
        return Client(self.account_sid, self.token, http_client=GatewayHttpClient(self.base, headers))


@pytest.fixture
def world(client, gateway_url, monkeypatch):
    monkeypatch.setenv("GATEWAY_WEBHOOK_ALLOW_HTTP", "1")
    monkeypatch.setenv("GATEWAY_WEBHOOK_RETRY_SCHEDULE", "0.05,0.05,0.05")
    made: list = []

    class World:
        def integration(self) -> Integration:
            inbox = make_inbox(client)
            made.append(inbox)
            return Integration(inbox, gateway_url)

        def receiver(self) -> Receiver:
            rx = Receiver()
            made.append(rx)
            return rx

    yield World()
    with db.connection() as conn:
        for m in made:
            if isinstance(m, Receiver):
                m.close()
            else:
                conn.execute("DELETE FROM webhook_endpoints WHERE account_id = %s", (m.account_id,))


def sms_channel(inbox, sandbox, **settings) -> dict:
    number = f"+1415{secrets.randbelow(10**7):07d}"
    return inbox.channel("twilio", number, settings={"api_base_url": sandbox.url, **settings})


def pump(inbox, rx: Receiver, n: int, timeout: float = 20.0) -> list:
    """Run what the gateway's processes run (send worker, inbound worker, sweeper, relay, delivery job) until
    the receiver has ``n`` callbacks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e2e.drain_sends(inbox)
        inbox.drain(("inbound",))
        sweeper.sweep_once(grace_s=0)
        deliver(idle_exit_s=0.1)
        with rx.lock:
            if len(rx.hits) >= n:
                return list(rx.hits)
        time.sleep(0.05)
    raise AssertionError(f"got {len(rx.hits)} callbacks, not {n}: {[h.body for h in rx.hits]}")


def params_of(hit) -> dict:
    return dict(parse_qsl(hit.body.decode(), keep_blank_values=True))


def valid(token: str, url: str, hit) -> bool:
    return RequestValidator(token).validate(url, params_of(hit), hit.headers.get("x-twilio-signature", ""))


def refusal(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


# -- sending, callbacks, reading back ------------------------------------------------------------------------------

def test_an_sms_is_sent_and_its_callbacks_arrive_signed_in_order(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    rx = world.receiver()
    callback = rx.url + "?tenant=acme&x=1"   # the query string is part of what Twilio signs

    msg = app.client.messages.create(to="+34600000901", from_=ch["external_id"], body="Tu cita es mañana a las 10",
                                     status_callback=callback)
    assert msg.sid.startswith("SM") and len(msg.sid) == 34 and msg.account_sid == app.account_sid
    assert msg.status == "queued" and msg.direction == "outbound-api" and msg.api_version == "2010-04-01"
    assert msg.to == "+34600000901" and msg.from_ == ch["external_id"] and msg.body == "Tu cita es mañana a las 10"
    assert msg.num_segments == "1" and msg.num_media == "0" and msg.price is None and msg.error_code is None
    assert msg.date_created is not None and msg.uri.endswith(f"/Messages/{msg.sid}.json")
    assert uuid.UUID(hex=msg.sid[2:])   # the gateway's message id, readable over the REST API too
    assert app.inbox.api("GET", f"/v1/messages/{uuid.UUID(hex=msg.sid[2:])}").status_code == 200

    hits = pump(app.inbox, rx, 2)
    time.sleep(0.3)
    deliver(idle_exit_s=0.1)
    assert len(rx.hits) == 2   # once each
    sent, delivered = (params_of(h) for h in hits)
    assert [sent["MessageStatus"], delivered["MessageStatus"]] == ["sent", "delivered"]
    for p in (sent, delivered):
        assert p["MessageSid"] == p["SmsSid"] == msg.sid and p["AccountSid"] == app.account_sid
        assert p["From"] == ch["external_id"] and p["To"] == "+34600000901" and p["ApiVersion"] == "2010-04-01"
        assert p["SmsStatus"] == p["MessageStatus"] and "ErrorCode" not in p
    assert all(h.headers["content-type"] == "application/x-www-form-urlencoded" for h in hits)
    assert all(h.path == "/hooks?tenant=acme&x=1" for h in hits)
    # Twilio's own validator, with the integration's auth token (its gateway API key), over the exact URL.
    assert all(valid(app.token, callback, h) for h in hits)
    assert not valid("another-token", callback, hits[0]) and not valid(app.token, rx.url, hits[0])

    got = [m for m in received(sandbox) if m["provider"] == "twilio" and m["recipient"] == "+34600000901"]
    assert len(got) == 1 and got[0]["body"]["Body"] == "Tu cita es mañana a las 10"
    assert got[0]["body"]["From"] == ch["external_id"]

    fetched = app.client.messages(msg.sid).fetch()
    assert fetched.sid == msg.sid and fetched.status == "delivered" and fetched.date_sent is not None
    assert fetched.body == msg.body and fetched.to == msg.to

    # The endpoint the facade made, in the delivery log like any other; a replay goes out signed again.
    [ep] = [e for e in app.inbox.api("GET", "/v1/webhook-endpoints").json["data"] if e["format"] == "twilio"]
    assert ep["url"] == callback and ep["event_types"] == ["message.sent", "message.status"]
    log = app.inbox.api("GET", f"/v1/webhook-endpoints/{ep['id']}/deliveries").json["data"]
    assert [d["state"] for d in log] == ["delivered", "delivered"]
    replay = app.inbox.api("POST", f"/v1/webhook-endpoints/{ep['id']}/deliveries/{log[-1]['id']}/replay")
    assert replay.status_code == 202, replay.json
    again = pump(app.inbox, rx, 3)[2]
    assert params_of(again) == sent and valid(app.token, callback, again)
    assert again.headers["webhook-id"] == hits[0].headers["webhook-id"]

    # A second send to the same callback URL with the same key reuses the endpoint.
    app.client.messages.create(to="+34600000901", from_=ch["external_id"], body="otra", status_callback=callback)
    assert len([e for e in app.inbox.api("GET", "/v1/webhook-endpoints").json["data"]
                if e["format"] == "twilio"]) == 1


def test_an_undelivered_sms_reports_twilios_error_code(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    rx = world.receiver()
    e2e.control(sandbox, "/_sandbox/config", {"twilio_error_code": 30003})   # unreachable handset, after acceptance
    msg = app.client.messages.create(to="+34600000971", from_=ch["external_id"], body="¿Estás?",
                                     status_callback=rx.url)
    hits = pump(app.inbox, rx, 2)
    sent, failed = (params_of(h) for h in hits)
    assert sent["MessageStatus"] == "sent" and "ErrorCode" not in sent
    assert failed["MessageStatus"] == failed["SmsStatus"] == "undelivered" and failed["ErrorCode"] == "30003"
    assert failed["ErrorMessage"] and "+34600000971" not in failed["ErrorMessage"]
    assert all(valid(app.token, rx.url, h) for h in hits)
    fetched = app.client.messages(msg.sid).fetch()
    assert fetched.status == "undelivered" and fetched.error_code == 30003 and fetched.error_message


def test_a_message_without_a_callback_url_sends_none_and_others_get_none(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    rx = world.receiver()
    app.client.messages.create(to="+34600000911", from_=ch["external_id"], body="con", status_callback=rx.url)
    app.client.messages.create(to="+34600000912", from_=ch["external_id"], body="sin")
    pump(app.inbox, rx, 2)
    time.sleep(0.5)
    pump(app.inbox, rx, 2)
    assert {params_of(h)["To"] for h in rx.hits} == {"+34600000911"} and len(rx.hits) == 2


def test_whatsapp_sends_through_a_whatsapp_channel_and_a_twilio_whatsapp_sender(world, sandbox):
    app = world.integration()
    wa = whatsapp(app.inbox, sandbox)   # display number +15550001111
    customer(app.inbox, wa, says("34600111999", "hola"), phone="34600111999")   # opens the 24 h window
    rx = world.receiver()
    msg = app.client.messages.create(to="whatsapp:+34600111999", from_="whatsapp:+15550001111", body="¿Te ayudo?",
                                     status_callback=rx.url)
    assert msg.to == "whatsapp:+34600111999" and msg.from_ == "whatsapp:+15550001111"
    hits = pump(app.inbox, rx, 3)
    assert [params_of(h)["MessageStatus"] for h in hits] == ["sent", "delivered", "read"]
    assert all(valid(app.token, rx.url, h) for h in hits)
    assert params_of(hits[0])["To"] == "whatsapp:+34600111999"
    [sent] = [m for m in received(sandbox) if m["provider"] != "twilio" and m.get("recipient") == "34600111999"] or [
        m for m in received(sandbox) if m["body"].get("to") == "34600111999"]
    assert sent["body"]["text"]["body"] == "¿Te ayudo?"

    sender = sms_channel(app.inbox, sandbox, channel="whatsapp")
    tw = app.client.messages.create(to="whatsapp:+34600000921", from_=f"whatsapp:{sender['external_id']}",
                                    body="por WhatsApp")
    assert tw.from_ == f"whatsapp:{sender['external_id']}"
    e2e.wait_for(lambda: [m for m in received(sandbox) if m["provider"] == "twilio"
                          and m["body"].get("To") == "whatsapp:+34600000921"], app.inbox, what="twilio whatsapp send")
    # An SMS From on a WhatsApp-only sender is not a sender of this account for SMS.
    assert refusal(lambda: app.client.messages.create(to="+34600000921", from_=sender["external_id"],
                                                      body="x")).code == 21606


def test_media_url_becomes_a_media_message_with_the_body_as_caption(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    msg = app.client.messages.create(to="+34600000931", from_=ch["external_id"], body="tu factura",
                                     media_url=["https://example.com/facturas/f-42.pdf"])
    assert msg.num_media == "1" and msg.body == "tu factura"
    stored = app.inbox.api("GET", f"/v1/messages/{uuid.UUID(hex=msg.sid[2:])}").json
    assert stored["kind"] == "document"
    photo = app.client.messages.create(to="+34600000931", from_=ch["external_id"],
                                       media_url=["https://example.com/p/foto"])   # no extension: an image
    assert app.inbox.api("GET", f"/v1/messages/{uuid.UUID(hex=photo.sid[2:])}").json["kind"] == "image"
    got = e2e.wait_for(lambda: (r := [m for m in received(sandbox) if m["provider"] == "twilio"
                                      and m["recipient"] == "+34600000931"]) and len(r) == 2 and r,
                       app.inbox, what="two media sends")
    by_url = {m["body"]["MediaUrl"][0]: m["body"] for m in got}
    assert by_url["https://example.com/facturas/f-42.pdf"]["Body"] == "tu factura"
    assert "Body" not in by_url["https://example.com/p/foto"]


def test_an_idempotent_retry_answers_the_same_message_and_sends_once(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    retrying = app.with_headers(**{"Idempotency-Key": f"order-{secrets.token_hex(4)}"})
    first = retrying.messages.create(to="+34600000941", from_=ch["external_id"], body="una vez")
    second = retrying.messages.create(to="+34600000941", from_=ch["external_id"], body="una vez")
    assert first.sid == second.sid
    other = retrying.messages.create
    assert refusal(lambda: other(to="+34600000941", from_=ch["external_id"], body="otra cosa")).status == 409
    e2e.wait_for(lambda: [m for m in received(sandbox) if m["recipient"] == "+34600000941"], app.inbox, what="send")
    e2e.drain_sends(app.inbox)
    assert len([m for m in received(sandbox) if m["recipient"] == "+34600000941"]) == 1


# -- refusals ----------------------------------------------------------------------------------------------------

def test_refusals_carry_twilios_codes(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    create = app.client.messages.create

    bad_to = refusal(lambda: create(to="not-a-number", from_=ch["external_id"], body="x"))
    assert (bad_to.code, bad_to.status) == (21211, 400)
    assert refusal(lambda: create(to="+34600000951", from_="+14150000000", body="x")).code == 21606
    assert refusal(lambda: create(to="+34600000951", from_="abc", body="x")).code == 21212
    assert refusal(lambda: create(to="+34600000951", from_=ch["external_id"], body="x" * 1601)).code == 21617
    assert refusal(lambda: create(to="+34600000951", from_=ch["external_id"], body="")).code == 21602
    assert refusal(lambda: create(to="+34600000951", from_=ch["external_id"], body="x",
                                  status_callback="ftp://example.com/cb")).code == 21609
    assert refusal(lambda: create(to="+34600000951", messaging_service_sid="MG" + "0" * 32, body="x")).code == 21606

    # Opted out: the customer texted STOP to the number.
    _sms(app.inbox, ch, "STOP", phone="+34600000952")
    stopped = refusal(lambda: create(to="+34600000952", from_=ch["external_id"], body="¿Sigues ahí?"))
    assert (stopped.code, stopped.status) == (21610, 400)
    assert "https://www.twilio.com/docs/errors/21610" in str(stopped) or stopped.code == 21610

    # WhatsApp outside the 24 h window.
    wa = whatsapp(app.inbox, sandbox)
    closed = refusal(lambda: create(to="whatsapp:+34600000953", from_="whatsapp:+15550001111", body="hola"))
    assert closed.code == 63016
    # Nothing was sent for any of them.
    assert not [m for m in received(sandbox) if m.get("recipient") in ("+34600000951", "+34600000952", "34600000953")]
    assert wa["kind"] == "whatsapp"


def test_credentials_and_other_accounts(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    other = world.integration()
    msg = app.client.messages.create(to="+34600000961", from_=ch["external_id"], body="mío")

    # The other account's sid with this key, or this sid with the other account's key: 20003.
    wrong = Client(other.account_sid, app.token, http_client=GatewayHttpClient(app.base))
    denied = refusal(lambda: wrong.messages.create(to="+34600000961", from_=ch["external_id"], body="x"))
    assert (denied.code, denied.status) == (20003, 401)
    mixed = Client(app.account_sid, other.token, http_client=GatewayHttpClient(app.base))
    assert refusal(lambda: mixed.messages.create(to="+34600000961", from_=ch["external_id"], body="x")).code == 20003
    bogus = Client(app.account_sid, "gwk_not_a_key", http_client=GatewayHttpClient(app.base))
    assert refusal(lambda: bogus.messages(msg.sid).fetch()).status == 401

    # Another account's message sid: not found, as for a sid that never existed.
    missing = refusal(lambda: other.client.messages(msg.sid).fetch())
    assert (missing.code, missing.status) == (20404, 404)
    assert refusal(lambda: app.client.messages("SM" + "0" * 32).fetch()).code == 20404
    assert refusal(lambda: app.client.messages("SMnope").fetch()).code == 20404
    assert app.client.messages(msg.sid).fetch().body == "mío"


def test_erasing_the_customer_removes_the_callback_links_and_sends_nothing(world, sandbox):
    app = world.integration()
    ch = sms_channel(app.inbox, sandbox)
    rx = world.receiver()
    msg = app.client.messages.create(to="+34600000981", from_=ch["external_id"], body="bórrame",
                                     status_callback=rx.url)
    message_id = uuid.UUID(hex=msg.sid[2:])
    with db.connection() as conn:
        contact_id = conn.execute("SELECT contact_id FROM messages WHERE account_id = %s AND id = %s",
                                  (app.inbox.account_id, message_id)).fetchone()["contact_id"]
        assert conn.execute("SELECT count(*) AS n FROM message_callbacks WHERE account_id = %s AND message_id = %s",
                            (app.inbox.account_id, message_id)).fetchone()["n"] == 1
    assert app.inbox.api("DELETE", f"/v1/contacts/{contact_id}").status_code in (200, 202, 204)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM message_callbacks WHERE account_id = %s",
                            (app.inbox.account_id,)).fetchone()["n"] == 0
    e2e.drain_sends(app.inbox)
    deliver(idle_exit_s=0.1)
    assert rx.hits == []
    assert refusal(lambda: app.client.messages(msg.sid).fetch()).code == 20404

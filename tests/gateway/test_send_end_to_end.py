"""Sending end to end: API → gate → RQ send worker → the sandbox provider over HTTP → signed status webhooks
back to the gateway's receiver → statuses on the message. Faults are injected at the sandbox."""
from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from werkzeug.serving import make_server

from gateway import outbound, sweeper
from tests.webhooks.conftest import META_SECRET, TWILIO_SID, TWILIO_TOKEN, make_inbox
from tests.webhooks.test_receiver import text, wa_body


@pytest.fixture(scope="module")
def gateway_url(app):
    # Start from a fresh connection pool: a test before this module may have terminated every backend
    # (test_outages), and this module's threads all need connections at once.
    from gateway import db
    db.close()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def sandbox(gateway_url, monkeypatch):
    from gateway.sandbox import start
    monkeypatch.setenv("GATEWAY_SEND_BACKOFF_S", "0.05")
    running = start(gateway_url=gateway_url, app_secret=META_SECRET, twilio_auth_token=TWILIO_TOKEN,
                    status_delay_ms=0)
    yield running
    running.stop()


def control(sandbox, path, doc=None, method=None):
    req = urllib.request.Request(sandbox.url + path, method=method or ("POST" if doc is not None else "GET"),
                                 data=None if doc is None else json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        return json.loads(body) if body else None


def received(sandbox) -> list[dict]:
    return control(sandbox, "/_sandbox/messages")["messages"]


def drain_sends(inbox, rounds: int = 1):
    for _ in range(rounds):
        outbound.flush_enqueues()
        inbox.drain(("send",))


def wait_for(predicate, inbox, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drain_sends(inbox)
        inbox.drain(("inbound",))
        sweeper.sweep_once(grace_s=0)
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _setup(client, sandbox, kind="whatsapp", **settings):
    import secrets
    # Bursts to one customer here test other things than WhatsApp's pair limit (its own test sets it).
    settings.setdefault("pair_interval_s", 0)
    inbox = make_inbox(client)
    external = f"+1415{secrets.randbelow(10**7):07d}" if kind == "twilio" else None
    ch = inbox.channel(kind, external, settings={"api_base_url": sandbox.url, **settings})
    return inbox, ch


def _customer(inbox, ch, phone="34600000701"):
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(phone, "hola", ts=int(time.time()) - 5)]))
    inbox.drain()
    return inbox.threads()[0]["contact_id"]


def send(inbox, **body):
    r = inbox.api("POST", "/v1/messages", json=body)
    assert r.status_code in (200, 202), r.json
    return r.json


def test_whatsapp_text_is_sent_once_and_goes_sent_delivered_read(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "¿Te ayudo?"})
    def all_three():
        m = inbox.api("GET", f"/v1/messages/{msg['id']}").json
        # the status webhooks are separate events and may be drained in any order
        return m["status"] == "read" and {"delivered", "read"} <= {s["status"] for s in m["statuses"]} and m

    done = wait_for(all_three, inbox, what="read status with the whole history")
    assert [s["status"] for s in done["statuses"] if s["status"] in ("sent", "delivered", "read")] == [
        "sent", "delivered", "read"]
    assert done["provider_message_id"].startswith("wamid.")
    got = [m for m in received(sandbox) if m.get("kind", m.get("type")) == "text"]
    assert len(got) == 1


@pytest.mark.parametrize("kind,payload", [
    ("template", {"name": "pedido_listo", "language": "es", "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}),
    ("image", {"link": "https://example.com/factura.png", "caption": "tu factura"}),
    ("document", {"link": "https://example.com/f.pdf", "filename": "factura.pdf"}),
    ("interactive", {"type": "button", "body": "¿Confirmas?", "buttons": [{"id": "si", "title": "Sí"},
                                                                          {"id": "no", "title": "No"}]}),
    ("interactive", {"type": "list", "body": "Elige", "button": "Ver", "sections": [
        {"title": "Citas", "rows": [{"id": "lunes", "title": "Lunes"}]}]}),
    ("location", {"latitude": 40.4168, "longitude": -3.7038, "name": "Sol"}),
    ("video", {"link": "https://example.com/demo.mp4", "caption": "cómo se monta"}),
    ("audio", {"link": "https://example.com/nota.ogg"}),
    ("sticker", {"link": "https://example.com/ok.webp"}),
    ("contacts", [{"name": {"formatted_name": "Soporte", "first_name": "Soporte"},
                   "phones": [{"phone": "+34910000000", "type": "WORK"}]}]),
])
def test_each_whatsapp_type_reaches_the_provider(client, sandbox, kind, payload):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type=kind, **{kind: payload})
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] in ("sent", "delivered", "read"),
             inbox, what=f"{kind} sent")
    assert len(received(sandbox)) == 1


def test_twilio_sms_and_messenger_text(client, sandbox):
    inbox, sms = _setup(client, sandbox, "twilio")
    msg = send(inbox, channel_id=sms["id"], to={"address": "+34600000702"}, type="text", text={"body": "Tu cita"})
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] in ("sent", "delivered"),
             inbox, what="sms sent")
    page = inbox.channel("messenger", settings={"api_base_url": sandbox.url})
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1, "messaging": [
        {"sender": {"id": "PSID-e2e"}, "recipient": {"id": page["external_id"]}, "timestamp": int(time.time() * 1000),
         "message": {"mid": "m_e2e", "text": "hi"}}]}]})
    inbox.drain()
    contact = [t for t in inbox.threads() if t["channel_kind"] == "messenger"][0]["contact_id"]
    reply = send(inbox, channel_id=page["id"], contact_id=contact, type="text", text={"body": "hello!"})
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{reply['id']}").json["status"] in ("sent", "delivered", "read"),
             inbox, what="messenger sent")
    refused = inbox.api("POST", "/v1/messages", json={"channel_id": sms["id"], "to": {"address": "+34600000702"},
                                                      "type": "location", "location": {"latitude": 1, "longitude": 2}})
    assert refused.status_code == 422 and refused.json["type"].endswith("/unsupported_message_type")


def test_429_storm_loses_nothing_and_sends_nothing_twice(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    # A storm of 15 answers 429 (Retry-After: 1), then the provider recovers.
    control(sandbox, "/_sandbox/config", {"status_429_rate": 1.0, "retry_after_s": 1, "max_faults": 15})
    ids = [send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": f"n{i}"})["id"]
           for i in range(12)]

    def all_sent():
        states = [inbox.api("GET", f"/v1/messages/{i}").json["status"] for i in ids]
        return all(s in ("sent", "delivered", "read") for s in states)
    wait_for(all_sent, inbox, timeout=30, what="every message sent despite 429s")
    accepted = [m["body"]["biz_opaque_callback_data"] for m in received(sandbox) if m["http_status"] == 200]
    assert sorted(accepted) == sorted(ids)          # every message accepted exactly once
    assert any(m["http_status"] == 429 for m in received(sandbox))


@pytest.mark.parametrize("code,expect", [(131026, "failed"), (131047, "failed")])
def test_permanent_errors_fail_at_once_with_code_and_reason(client, sandbox, code, expect):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": code})
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "x"})
    done = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] == expect and m,
                    inbox, what="failure")
    assert done["error"]["code"] == str(code) and done["attempts"] == 1 and done["error"]["reason"]
    dead = inbox.api("GET", "/v1/messages?state=failed").json["data"]
    assert [m["id"] for m in dead] == [msg["id"]]


def test_user_stopped_marketing_records_the_opt_out(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    granted = inbox.api("POST", f"/v1/contacts/{contact}/consents", json={
        "channel_kind": "whatsapp", "purpose": "marketing", "action": "granted", "source": "web_form",
        "proof": {"text": "Quiero recibir ofertas por WhatsApp", "text_version": "v1", "page": "/alta"}})
    assert granted.status_code == 201, granted.json
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131050})
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "x"}, purpose="marketing")
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] == "failed", inbox, what="131050")
    again = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact, "type": "text",
                                                    "text": {"body": "y"}, "purpose": "marketing"})
    assert again.status_code == 403 and again.json["type"].endswith("/opted_out")
    history = inbox.api("GET", f"/v1/contacts/{contact}/consents").json["history"]
    assert history[0]["purpose"] == "marketing" and history[0]["action"] == "withdrawn"
    assert history[0]["source"] == "provider" and history[0]["proof"]["provider_code"] == "131050"
    # 131050 stops marketing only: a transactional message still goes.
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": None})
    send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "Tu pedido salió"})


def test_twilio_unsubscribed_recipient_stops_every_purpose_on_sms(client, sandbox):
    inbox, sms = _setup(client, sandbox, "twilio")
    control(sandbox, "/_sandbox/config", {"twilio_error_code": 21610})
    msg = send(inbox, channel_id=sms["id"], to={"address": "+34600000706"}, type="text", text={"body": "Tu cita"})
    failed = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] == "failed" and m,
                      inbox, what="21610")
    assert failed["error"]["code"] == "21610"
    again = inbox.api("POST", "/v1/messages", json={"channel_id": sms["id"], "to": {"address": "+34600000706"},
                                                    "type": "text", "text": {"body": "otra"}})
    assert again.status_code == 403 and again.json["type"].endswith("/opted_out")


def test_auth_error_pauses_the_channel_and_says_so(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 190})
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "x"})
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] == "failed", inbox, what="190")
    shown = inbox.api("GET", f"/v1/channels/{ch['id']}").json
    assert shown["status"] == "paused" and "access_token" in shown["paused_reason"]
    again = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact, "type": "text",
                                                    "text": {"body": "y"}})
    assert again.status_code == 409 and again.json["type"].endswith("/channel_paused")


def test_redis_flushed_mid_queue_then_sweeper_sends_everything_once(client, sandbox, redis):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    ids = [send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": f"f{i}"})["id"]
           for i in range(5)]
    outbound.flush_enqueues()
    redis.flushdb()
    assert sweeper.sweep_once(grace_s=0)["send"] >= 5
    wait_for(lambda: all(inbox.api("GET", f"/v1/messages/{i}").json["status"] in ("sent", "delivered", "read")
                         for i in ids), inbox, what="all sent")
    accepted = [m["body"]["biz_opaque_callback_data"] for m in received(sandbox) if m["http_status"] == 200]
    assert sorted(accepted) == sorted(ids)


def _worker(env_extra=None):
    import os
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "send"], env={**os.environ,
                            **(env_extra or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def test_worker_killed_mid_send_is_reconciled_not_resent(client, sandbox, monkeypatch):
    import os
    import signal
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    control(sandbox, "/_sandbox/config", {"latency_ms": 1500})
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "sólo una vez"})
    outbound.flush_enqueues()
    worker = _worker()
    try:
        wait_for(lambda: inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] == "sending",
                 _NoDrain(inbox), timeout=20, what="the worker to claim it")
        time.sleep(0.5)                              # the request is at the provider now
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] == "sending"
    # The provider did accept it and its status webhooks carry our id (biz_opaque_callback_data).
    wait_for(lambda: any(m["http_status"] == 200 for m in received(sandbox)), _NoDrain(inbox), what="provider")
    control(sandbox, "/_sandbox/config", {"latency_ms": 0})
    monkeypatch.setenv("GATEWAY_SEND_RECONCILE_S", "0")
    done = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] == "read" and m,
                    inbox, what="reconciled and read")
    accepted = [m for m in received(sandbox) if m["http_status"] == 200]
    assert len(accepted) == 1 and done["attempts"] == 1


class _NoDrain:
    """wait_for without running jobs here (a worker process is doing that)."""

    def __init__(self, inbox):
        self.inbox = inbox

    def drain(self, queues=("inbound",)):
        pass

    def __getattr__(self, name):
        return getattr(self.inbox, name)


def test_three_workers_never_exceed_the_channel_rate(client, sandbox):
    inbox, ch = _setup(client, sandbox, rate_per_s=50)
    contact = _customer(inbox, ch)
    control(sandbox, "/_sandbox/config", {"callbacks": False})
    ids = [send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": f"r{i}"})["id"]
           for i in range(1000)]
    outbound.flush_enqueues()
    workers = [_worker() for _ in range(3)]
    try:
        deadline = time.monotonic() + 60
        while len([m for m in received(sandbox) if m["http_status"] == 200]) < len(ids):
            assert time.monotonic() < deadline, "not all sent in 60 s"
            time.sleep(0.5)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=20)
    stamps = sorted(m["received_at"] for m in received(sandbox) if m["http_status"] == 200)
    worst, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1000:
            j += 1
        worst = max(worst, i - j + 1)
    assert worst <= 52, f"{worst} sends within one second at a 50/s limit"
    assert (stamps[-1] - stamps[0]) / 1000 >= (len(ids) - 52) / 50 * 0.95


def test_pair_rate_holds_back_a_customers_burst_and_sends_each_once(client, sandbox, conn):
    inbox, ch = _setup(client, sandbox, pair_interval_s=1, pair_burst=2)
    contact = _customer(inbox, ch)
    other = _customer(inbox, ch, phone="34600000702")
    ids = [send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": f"aviso {i}"})["id"]
           for i in range(4)]
    elsewhere = send(inbox, channel_id=ch["id"], contact_id=other, type="text", text={"body": "a otro"})["id"]
    wait_for(lambda: all(inbox.api("GET", f"/v1/messages/{i}").json["status"] in ("sent", "delivered", "read")
                         for i in ids + [elsewhere]), inbox, what="every message sent")
    got = [m for m in received(sandbox) if m["http_status"] == 200]
    to_contact = sorted(m["received_at"] for m in got if m["body"]["to"] == "34600000701")
    assert len(to_contact) == 4 and len(got) == 5          # each once, none lost
    # Two at once (the burst), then one a second: never faster than the pair limit.
    assert to_contact[2] - to_contact[0] >= 900 and to_contact[3] - to_contact[0] >= 1900
    attempts = conn.execute("SELECT attempts FROM messages WHERE account_id = %s AND id = ANY(%s)",
                            (inbox.account_id, ids)).fetchall()
    assert [a["attempts"] for a in attempts] == [1, 1, 1, 1]   # held back is not a failed attempt


def test_an_uploaded_image_is_sent_as_a_signed_link_the_provider_can_fetch(client, sandbox, gateway_url, monkeypatch):
    import dataclasses
    import io

    from gateway import runtime
    monkeypatch.setattr(runtime, "_settings", dataclasses.replace(runtime.settings(), public_url=gateway_url))
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    up = inbox.api("POST", "/v1/media", data={"file": (io.BytesIO(png), "plano.png", "image/png")},
                   content_type="multipart/form-data")
    assert up.status_code == 201, up.json
    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="image",
               image={"media_id": up.json["id"], "caption": "el plano"})
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] in ("sent", "delivered", "read"),
             inbox, what="image sent")
    [got] = [m for m in received(sandbox) if m["http_status"] == 200]
    link = got["body"]["image"]["link"]
    assert link.startswith(gateway_url + "/media-links/") and got["body"]["image"]["caption"] == "el plano"
    with urllib.request.urlopen(link, timeout=10) as r:      # what Meta's fetcher does
        assert r.read() == png and r.headers["Content-Type"] == "image/png"
    # An id that is not one of ours is refused before anything is queued; a provider's own id passes.
    unknown = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact, "type": "image",
                                                      "image": {"media_id": "01a20bb3-0000-7000-8000-000000000000"}})
    assert unknown.status_code == 404 and unknown.json["type"].endswith("/unknown-upload")
    theirs = send(inbox, channel_id=ch["id"], contact_id=contact, type="image", image={"media_id": "1234567890"})
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{theirs['id']}").json["status"] in ("sent", "delivered", "read"),
             inbox, what="provider media id sent")
    assert [m["body"]["image"] for m in received(sandbox) if m["http_status"] == 200][-1] == {"id": "1234567890"}


def test_messenger_send_that_timed_out_is_settled_by_its_echo_not_resent(client, sandbox, monkeypatch):
    inbox, _ = _setup(client, sandbox)
    page = inbox.channel("messenger", settings={"api_base_url": sandbox.url, "send_timeout_s": 0.5})
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1, "messaging": [
        {"sender": {"id": "PSID-echo"}, "recipient": {"id": page["external_id"]},
         "timestamp": int(time.time() * 1000), "message": {"mid": "m_in_echo", "text": "hola"}}]}]})
    inbox.drain()
    contact = [t for t in inbox.threads() if t["channel_kind"] == "messenger"][0]["contact_id"]
    # Meta takes the message but answers after our read timeout: the outcome is unknown.
    control(sandbox, "/_sandbox/config", {"timeout_rate": 1.0, "timeout_s": 1, "max_faults": 1})
    msg = send(inbox, channel_id=page["id"], contact_id=contact, type="text", text={"body": "¿seguimos?"})
    drain_sends(inbox)
    shown = inbox.api("GET", f"/v1/messages/{msg['id']}").json
    assert shown["status"] == "sending" and "unknown" in shown["last_error"]
    # The reconcile wait (GATEWAY_SEND_RECONCILE_S, 2 minutes by default) is for the provider's webhooks
    # to arrive; here they are let in first, then the wait is cut short.
    wait_for(lambda: any(m["http_status"] == 200 for m in received(sandbox)), _NoDrain(inbox), what="provider")
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    monkeypatch.setenv("GATEWAY_SEND_RECONCILE_S", "0")
    # The echo (message_echoes, metadata = our id) proves it went out: adopted, never sent again.
    done = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] in (
        "sent", "delivered", "read") and m["provider_message_id"] and m, inbox, what="settled by the echo")
    accepted = [m for m in received(sandbox) if m["http_status"] == 200]
    assert len(accepted) == 1 and done["provider_message_id"] == accepted[0]["provider_message_id"]
    assert done["attempts"] == 1
    # The echo did not become a second outbound message in the thread.
    thread = inbox.api("GET", f"/v1/threads/{done['thread_id']}/messages").json["data"]
    assert [m["direction"] for m in thread] == ["inbound", "outbound"]


def test_twilio_send_that_timed_out_is_found_through_the_messages_list_not_resent(client, sandbox, monkeypatch):
    import secrets
    inbox = make_inbox(client)
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}",
                        settings={"api_base_url": sandbox.url, "send_timeout_s": 0.5})
    # Twilio makes the message but answers after our read timeout: the outcome is unknown.
    control(sandbox, "/_sandbox/config", {"timeout_rate": 1.0, "timeout_s": 1, "max_faults": 1})
    msg = send(inbox, channel_id=sms["id"], to={"address": "+34600000703"}, type="text", text={"body": "Tu cita"})
    drain_sends(inbox)
    assert inbox.api("GET", f"/v1/messages/{msg['id']}").json["status"] == "sending"
    wait_for(lambda: any(m["http_status"] == 201 for m in received(sandbox)), _NoDrain(inbox), what="provider")
    monkeypatch.setenv("GATEWAY_SEND_RECONCILE_S", "0")
    done = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] in (
        "sent", "delivered") and m, inbox, what="found through the list")
    made = [m for m in received(sandbox) if m["http_status"] == 201]
    assert len(made) == 1 and done["provider_message_id"] == made[0]["provider_message_id"]
    assert done["attempts"] == 1


def test_twilio_find_sent_matches_only_this_message(sandbox):
    import secrets
    from datetime import datetime, timedelta, timezone

    from gateway.providers import OutboundMessage
    from webhooks.twilio import PROVIDER
    number = f"+1415{secrets.randbelow(10**7):07d}"
    channel = {"kind": "twilio", "external_id": number, "settings": {"api_base_url": sandbox.url}}
    creds = {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    sent = OutboundMessage(id="m1", to="+34600000704", to_kind="phone", kind="text", content={"body": "Hola Ana"})
    other = OutboundMessage(id="m2", to="+34600000704", to_kind="phone", kind="text", content={"body": "Otra"})
    assert PROVIDER.find_sent(sent, channel, creds, before) is None          # nothing there yet: resend is safe
    made = PROVIDER.send(sent, channel, creds)
    found = PROVIDER.find_sent(sent, channel, creds, before)
    assert found.outcome == "sent" and found.provider_message_id == made.provider_message_id
    assert PROVIDER.find_sent(other, channel, creds, before) is None       # another body is another message
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert PROVIDER.find_sent(sent, channel, creds, later) is None         # made before this attempt began
    wrong = PROVIDER.find_sent(sent, channel, {"account_sid": TWILIO_SID, "auth_token": "wrong"}, before)
    assert wrong.outcome == "unknown"                                       # could not ask: no guess


def test_reaction_and_read_receipt_on_whatsapp(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    inbound = inbox.api("GET", f"/v1/threads/{inbox.threads()[0]['id']}/messages").json["data"][0]
    reaction = send(inbox, channel_id=ch["id"], contact_id=contact, type="reaction",
                    reaction={"message_id": inbound["id"], "emoji": "👍"})
    receipt = inbox.api("POST", f"/v1/messages/{inbound['id']}/read")
    assert receipt.status_code == 202, receipt.json
    for message_id in (reaction["id"], receipt.json["id"]):
        wait_for(lambda: inbox.api("GET", f"/v1/messages/{message_id}").json["status"] in (
            "sent", "delivered", "read"), inbox, what="sent")
    bodies = [m["body"] for m in received(sandbox) if m["http_status"] == 200]
    # One batch, sent concurrently: the two reach the provider in either order.
    [reacted] = [b for b in bodies if b.get("type") == "reaction"]
    [read] = [b for b in bodies if b.get("status") == "read"]
    assert len(bodies) == 2 and reacted["reaction"]["emoji"] == "👍"
    assert reacted["reaction"]["message_id"] == inbound["provider_message_id"]
    assert read["message_id"] == inbound["provider_message_id"]


@pytest.mark.parametrize("kind,payload", [
    ("text", {"body": "¡Hola!"}),
    ("image", {"link": "https://example.com/factura.png"}),
    ("video", {"link": "https://example.com/demo.mp4"}),
    ("audio", {"link": "https://example.com/nota.mp3"}),
    ("document", {"link": "https://example.com/f.pdf"}),
    ("interactive", {"type": "button", "body": "¿Confirmas?", "buttons": [{"id": "si", "title": "Sí"}]}),
])
def test_each_messenger_type_reaches_the_provider(client, sandbox, kind, payload):
    inbox, _ = _setup(client, sandbox)
    page = inbox.channel("messenger", settings={"api_base_url": sandbox.url})
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1, "messaging": [
        {"sender": {"id": f"PSID-{kind}"}, "recipient": {"id": page["external_id"]},
         "timestamp": int(time.time() * 1000), "message": {"mid": f"m_{kind}", "text": "hola"}}]}]})
    inbox.drain()
    contact = [t for t in inbox.threads() if t["channel_kind"] == "messenger"][0]["contact_id"]
    msg = send(inbox, channel_id=page["id"], contact_id=contact, type=kind, **{kind: payload})
    done = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] in (
        "sent", "delivered", "read") and m, inbox, what=f"messenger {kind} sent")
    [got] = [m for m in received(sandbox) if m["http_status"] == 200]
    assert got["body"]["recipient"] == {"id": f"PSID-{kind}"} and got["body"]["message"]["metadata"] == msg["id"]
    assert done["provider_message_id"] == got["provider_message_id"]


@pytest.mark.parametrize("kind,payload", [
    ("text", {"body": "Tu cita es mañana"}),
    ("image", {"link": "https://example.com/factura.png", "caption": "tu factura"}),
    ("document", {"link": "https://example.com/f.pdf"}),
])
def test_each_twilio_type_reaches_the_provider(client, sandbox, kind, payload):
    inbox, sms = _setup(client, sandbox, "twilio")
    msg = send(inbox, channel_id=sms["id"], to={"address": "+34600000705"}, type=kind, **{kind: payload})
    done = wait_for(lambda: (m := inbox.api("GET", f"/v1/messages/{msg['id']}").json)["status"] in (
        "sent", "delivered") and m, inbox, what=f"twilio {kind} sent")
    [got] = [m for m in received(sandbox) if m["http_status"] == 201]
    assert done["provider_message_id"] == got["provider_message_id"]
    refused = inbox.api("POST", "/v1/messages", json={"channel_id": sms["id"], "to": {"address": "+34600000705"},
                                                      "type": "interactive", "interactive": {
                                                          "type": "button", "body": "x",
                                                          "buttons": [{"id": "a", "title": "A"}]}})
    assert refused.status_code == 422 and refused.json["type"].endswith("/unsupported_message_type")


def test_an_unreadable_queued_message_fails_alone_and_does_not_block_the_batch(client, sandbox, conn):
    from gateway import messages
    inbox, ch = _setup(client, sandbox)
    contact = _customer(inbox, ch)
    good = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "ésta sí"})
    # A row no send can be made from (no content), queued beside it: as a bug or a bad import would leave.
    broken = messages.record_message(conn, account_id=inbox.account_id, contact_id=contact, channel_id=ch["id"],
                                     direction="outbound", body="?", status="queued")
    conn.commit()
    outbound.enqueue(inbox.account_id, broken["id"])
    wait_for(lambda: inbox.api("GET", f"/v1/messages/{good['id']}").json["status"] in ("sent", "delivered", "read"),
             inbox, what="the good one sent")
    shown = inbox.api("GET", f"/v1/messages/{broken['id']}").json
    assert shown["status"] == "failed" and shown["error"]["code"] == "unreadable"
    assert len([m for m in received(sandbox) if m["http_status"] == 200]) == 1

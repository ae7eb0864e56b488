"""Ack only after durable storage, dedupe, and the sweeper re-enqueueing what Redis lost.

A minimal provider defined here (HMAC over the raw body) drives the generic
receiver; the real providers arrive in their own folders.
"""
import hashlib
import hmac
import json
import uuid

import pytest
from rq import SimpleWorker

from gateway import channels, jobs, messages, runtime, sweeper
from gateway.providers import InboundMessage, SendResult, StatusUpdate, Unsupported
from webhooks import registry


class HmacProvider:
    name = "sandbox"

    def channel_ids(self, raw, headers, url):
        return [headers.get("X-Channel", "")]

    def verify(self, raw, headers, url, credentials):
        expected = hmac.new(credentials["secret"].encode(), raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Signature", ""))

    def dedupe_key(self, raw, headers):
        return json.loads(raw)["id"]

    def parse(self, raw, headers):
        doc = json.loads(raw)
        if doc.get("type") == "message":
            return [InboundMessage(external_id=doc["to"], sender=doc["from"], sender_kind="phone",
                                   provider_message_id=doc["id"], kind="text", text=doc["text"])]
        if doc.get("type") == "status":
            return [StatusUpdate(external_id=doc["to"], provider_message_id=doc["message"], status=doc["status"])]
        return [Unsupported(str(doc.get("type")))]

    def send(self, message, credentials):
        return SendResult("failed", reason="the test provider does not send")


@pytest.fixture
def provider():
    p = registry.register(HmacProvider())
    yield p
    registry.PROVIDERS.pop(p.name, None)


@pytest.fixture
def channel(tenant, conn):
    ch = channels.create_channel(conn, account_id=tenant.id, kind="sandbox", name="t",
                                 external_id=f"sb-{uuid.uuid4().hex[:10]}", credentials={"secret": "s3cret"},
                                 actor="test")
    conn.commit()
    return ch


def _post(client, channel, doc, secret="s3cret"):
    raw = json.dumps(doc).encode()
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/webhooks/sandbox", data=raw, headers={"X-Channel": channel["external_id"],
                                                               "X-Signature": sig,
                                                               "Content-Type": "application/json"})


def _drain():
    from gateway import inbound
    inbound.flush_enqueues()    # the receiver hands jobs to Redis just after its answer
    worker = SimpleWorker([jobs.queue(q) for q in jobs.QUEUES], connection=runtime.redis_client())
    worker.work(burst=True, with_scheduler=False)


def _events(conn, account_id):
    return conn.execute("SELECT id, processed_at, attempts FROM inbound_events WHERE account_id = %s",
                        (account_id,)).fetchall()


def test_unknown_provider_is_404(client):
    r = client.post("/webhooks/nope", data=b"{}")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_bad_signature_stores_nothing(client, provider, channel, tenant, conn):
    r = _post(client, channel, {"id": "m1", "type": "message", "from": "+34600000001", "to": "x", "text": "hi"},
              secret="wrong")
    assert r.status_code == 401
    assert _events(conn, tenant.id) == []


def test_message_is_stored_once_then_applied_by_a_worker(client, provider, channel, tenant, conn):
    doc = {"id": "wamid.1", "type": "message", "from": "+34600000001", "to": channel["external_id"], "text": "hola"}
    assert _post(client, channel, doc).status_code == 200
    assert _post(client, channel, doc).status_code == 200      # provider redelivery
    rows = _events(conn, tenant.id)
    assert len(rows) == 1 and rows[0]["processed_at"] is None   # durable before the ack, applied later
    conn.commit()
    _drain()
    conn.rollback()
    assert _events(conn, tenant.id)[0]["processed_at"] is not None
    thread = conn.execute("SELECT id FROM threads WHERE account_id = %s", (tenant.id,)).fetchone()
    msgs = messages.list_thread_messages(conn, account_id=tenant.id, thread_id=thread["id"])
    assert [(m["direction"], m["text"]) for m in msgs] == [("inbound", "hola")]


def test_statuses_never_move_backwards(client, provider, channel, tenant, conn):
    contact = tenant.post("/v1/contacts", {"identities": [{"kind": "phone", "address": "+34600000002"}]}).json
    messages.record_message(conn, account_id=tenant.id, contact_id=contact["id"], channel_id=channel["id"],
                            direction="outbound", body="hi", status="sent", provider_message_id="wamid.out")
    conn.commit()
    for n, status in enumerate(["read", "delivered"]):
        _post(client, channel, {"id": f"st{n}", "type": "status", "to": channel["external_id"],
                                "message": "wamid.out", "status": status})
    _drain()
    conn.rollback()
    row = conn.execute("SELECT status FROM messages WHERE account_id = %s AND direction = 'outbound'",
                       (tenant.id,)).fetchone()
    assert row["status"] == "read"


def test_sweeper_reenqueues_what_redis_lost(client, provider, channel, tenant, conn, redis):
    doc = {"id": "wamid.2", "type": "message", "from": "+34600000003", "to": channel["external_id"], "text": "x"}
    assert _post(client, channel, doc).status_code == 200
    from gateway import inbound
    inbound.flush_enqueues()
    redis.flushdb()                         # Redis restarted without persistence
    conn.commit()
    _drain()                                # nothing to do: the job pointer is gone
    conn.rollback()
    assert _events(conn, tenant.id)[0]["processed_at"] is None
    counts = sweeper.sweep_once(grace_s=0)
    assert counts["inbound"] >= 1
    assert sweeper.sweep_once(grace_s=0)["inbound"] == 0   # already queued: not doubled
    _drain()
    conn.rollback()
    assert _events(conn, tenant.id)[0]["processed_at"] is not None
    assert sweeper.sweep_once(grace_s=0)["inbound"] == 0


def test_event_for_an_uninstalled_provider_is_kept_not_dropped(tenant, channel, conn):
    from gateway import inbound
    event_id, created = inbound.store_event(conn, account_id=tenant.id, channel_id=channel["id"],
                                            provider="sandbox", dedupe_key="orphan", raw=b"{}")
    conn.commit()
    assert inbound.process_event(str(tenant.id), str(event_id)) == "unsupported"
    row = conn.execute("SELECT processed_at, last_error, raw_enc FROM inbound_events WHERE account_id = %s AND id = %s",
                       (tenant.id, event_id)).fetchone()
    assert row["processed_at"] is not None and "no provider" in row["last_error"] and row["raw_enc"]
    assert inbound.process_event(str(tenant.id), str(event_id)) == "skipped"


def test_enqueue_with_redis_down_is_deferred_not_lost(tenant, channel, conn, monkeypatch):
    """With Redis unreachable the webhook is still stored; the sweeper enqueues it later."""
    import redis as redis_lib
    from gateway import inbound
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(runtime, "_redis", dead)       # a Redis that does not answer, not a patched function
    monkeypatch.setattr(runtime, "_redis_pid", __import__("os").getpid())
    event_id, _ = inbound.store_event(conn, account_id=tenant.id, channel_id=channel["id"], provider="sandbox",
                                      dedupe_key="later", raw=b"{}")
    conn.commit()
    assert inbound.enqueue_processing(tenant.id, event_id) is False

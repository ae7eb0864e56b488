"""Event webhooks: endpoints over the API, Standard Webhooks signatures checked by the `standardwebhooks` package,
ordering per thread, retries with Retry-After, dead letters, 410, replays, secret rotation, a hanging endpoint,
and no delivery for a rolled-back change: real PostgreSQL, real HTTP to a local receiver."""
from __future__ import annotations

import time
import uuid

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway import db, events, webhook_delivery, webhook_relay
from tests.gateway.webhook_receiver import Receiver

THREAD_EVENT = "thread.status_changed"


@pytest.fixture
def hooks(tenant, monkeypatch):
    """Plain-HTTP endpoints allowed (loopback), fast retries; every endpoint made is deleted afterwards so
    later tests' delivery jobs never retry it."""
    monkeypatch.setenv("GATEWAY_WEBHOOK_ALLOW_HTTP", "1")
    monkeypatch.setenv("GATEWAY_WEBHOOK_RETRY_SCHEDULE", "0.05,0.05,0.05")
    receivers: list[Receiver] = []

    class Hooks:
        def receiver(self, answer=None) -> Receiver:
            r = Receiver(answer)
            receivers.append(r)
            return r

        def endpoint(self, receiver: Receiver, types=(THREAD_EVENT,), key=None, **extra) -> dict:
            r = tenant.post("/v1/webhook-endpoints", {"url": receiver.url, "event_types": list(types), **extra}, key=key)
            assert r.status_code == 201, r.json
            return r.json

    yield Hooks()
    with db.connection() as conn:
        conn.execute("DELETE FROM webhook_endpoints WHERE account_id = %s", (tenant.id,))
    for r in receivers:
        r.close()


def emit(account_id, thread_ids, n_each=1, type_=THREAD_EVENT) -> list[str]:
    """Events as a change would write them: in one committed transaction, interleaved across threads."""
    ids = []
    with db.connection() as conn:
        for i in range(n_each):
            for t in thread_ids:
                ids.append(str(events.emit(conn, account_id, type_, {"thread_id": str(t), "actor": "test", "to": "open",
                                                                     "n": i}, subject_id=t)))
        conn.commit()
    return ids


def deliver(idle_exit_s: float = 0.3) -> dict:
    with db.connection() as conn:
        webhook_relay.relay_all(conn)
    return webhook_delivery.drain(idle_exit_s=idle_exit_s)


def _deliveries(tenant, endpoint_id, **params) -> list[dict]:
    r = tenant.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", query_string=params)
    assert r.status_code == 200, r.json
    return r.json["data"]


# -- endpoints ------------------------------------------------------------------------------------------------

def test_endpoint_lifecycle_shows_the_secret_once(tenant, hooks):
    rx = hooks.receiver()
    made = hooks.endpoint(rx, types=["message.received", "contact.created"], description="CRM")
    assert made["secret"].startswith("whsec_") and made["enabled"] is True
    assert made["event_types"] == ["contact.created", "message.received"]
    listed = tenant.get("/v1/webhook-endpoints").json["data"]
    assert [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    one = tenant.get(f"/v1/webhook-endpoints/{made['id']}").json
    assert "secret" not in one and one["description"] == "CRM"
    r = tenant.client.patch(f"/v1/webhook-endpoints/{made['id']}", json={"event_types": ["*"], "enabled": False},
                            headers=tenant.headers())
    assert r.status_code == 200, r.json
    assert "campaign.status_changed" in r.json["event_types"] and r.json["enabled"] is False
    assert r.json["disabled_reason"] == "disabled by the API"
    assert tenant.delete(f"/v1/webhook-endpoints/{made['id']}").status_code == 204
    assert tenant.get(f"/v1/webhook-endpoints/{made['id']}").status_code == 404


def test_bad_endpoints_are_refused_with_what_to_fix(tenant, hooks, monkeypatch):
    def problem(body, status=422, key=None):
        r = tenant.post("/v1/webhook-endpoints", body, key=key)
        assert r.status_code == status, r.json
        assert r.content_type == "application/problem+json"
        return r.json

    assert "unknown event type(s) message.recieved" in problem(
        {"url": "https://crm.example.com/h", "event_types": ["message.recieved"]})["errors"][0]["detail"]
    assert problem({"url": "ftp://crm.example.com/h", "event_types": ["*"]})["errors"][0]["field"] == "url"
    assert problem({"url": "https://user:pw@crm.example.com/h", "event_types": ["*"]})["errors"][0]["field"] == "url"
    assert problem({"url": "https://crm.example.com/h", "event_types": []})["errors"][0]["field"] == "event_types"
    assert problem({"url": "https://crm.example.com/h", "event_types": ["*"], "colour": "red"})["errors"]
    monkeypatch.delenv("GATEWAY_WEBHOOK_ALLOW_HTTP")
    detail = problem({"url": "http://crm.example.com/h", "event_types": ["*"]})["errors"][0]["detail"]
    assert "https://" in detail and "GATEWAY_WEBHOOK_ALLOW_HTTP" in detail
    # A key may subscribe only to what it may read.
    key = tenant.key_with("webhooks:write", "messages:read")
    doc = problem({"url": "https://crm.example.com/h", "event_types": ["contact.created"]}, status=403, key=key)
    assert "contacts:read" in doc["detail"]
    r = tenant.post("/v1/webhook-endpoints", {"url": "https://crm.example.com/h", "event_types": ["*"]}, key=key)
    assert r.status_code == 201 and "contact.created" not in r.json["event_types"]
    assert "message.received" in r.json["event_types"]
    blind = tenant.key_with("webhooks:write")
    assert "may read no event type" in problem({"url": "https://crm.example.com/h", "event_types": ["*"]}, status=403,
                                               key=blind)["detail"]
    no_scope = tenant.key_with("messages:read")
    assert tenant.get("/v1/webhook-endpoints", key=no_scope).status_code == 403
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM webhook_endpoints WHERE account_id = %s",
                            (tenant.id,)).fetchone()["n"] == 1


# -- delivery -------------------------------------------------------------------------------------------------

def test_events_arrive_signed_as_standard_webhooks_say(tenant, hooks):
    rx = hooks.receiver()
    ep = hooks.endpoint(rx)
    thread = uuid.uuid4()
    [event_id] = emit(tenant.id, [thread])
    assert deliver().get("delivered") == 1
    [hit] = rx.wait_for(1)
    payload = Webhook(ep["secret"]).verify(hit.body, hit.headers)   # the PyPI package, not our code
    assert payload["id"] == event_id == hit.headers["webhook-id"]
    assert payload["type"] == THREAD_EVENT and payload["data"]["thread_id"] == str(thread)
    assert payload["account_id"] == str(tenant.id) and payload["timestamp"]
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(hit.body, hit.headers)
    [d] = _deliveries(tenant, ep["id"])
    assert d["state"] == "delivered" and d["attempts"] == 1 and d["event_id"] == event_id
    assert d["attempt_log"][0]["status_code"] == 200 and d["attempt_log"][0]["latency_ms"] >= 0


def test_only_subscribed_types_and_only_this_account(tenant, make_tenant, hooks):
    rx = hooks.receiver()
    hooks.endpoint(rx, types=["contact.updated"])
    other = make_tenant("other")
    emit(tenant.id, [uuid.uuid4()])                                  # a type it did not ask for
    emit(other.id, [uuid.uuid4()], type_="contact.updated")          # another account's
    [wanted] = emit(tenant.id, [uuid.uuid4()], type_="contact.updated")
    deliver()
    assert [b["id"] for b in rx.bodies()] == [wanted]


def test_each_threads_events_arrive_in_order(tenant, hooks):
    import random
    rx = hooks.receiver(lambda hit, n: (200, {}, random.uniform(0, 0.01)))
    hooks.endpoint(rx)
    threads = [uuid.uuid4() for _ in range(6)]
    emit(tenant.id, threads, n_each=15)
    deliver()
    rx.wait_for(90)
    seen: dict = {}
    for body in rx.bodies():
        seen.setdefault(body["data"]["thread_id"], []).append(body["data"]["n"])
    assert set(seen) == {str(t) for t in threads}
    assert all(ns == list(range(15)) for ns in seen.values()), seen


def test_a_failing_endpoint_is_retried_until_it_recovers_and_keeps_order(tenant, hooks):
    rx = hooks.receiver(lambda hit, n: (500 if n < 2 else 200, {}, 0))
    ep = hooks.endpoint(rx)
    thread = uuid.uuid4()
    first, second = emit(tenant.id, [thread], n_each=2)
    deliver(idle_exit_s=1.0)
    hits = rx.wait_for(4)
    assert [h.json["id"] for h in hits] == [first, first, first, second]   # the second waited for the first
    done = {d["event_id"]: d for d in _deliveries(tenant, ep["id"])}
    assert done[first]["state"] == "delivered" and done[first]["attempts"] == 3
    assert [a["status_code"] for a in done[first]["attempt_log"]] == [500, 500, 200]
    assert done[first]["attempt_log"][0]["error"] == "the endpoint answered 500 Internal Server Error"
    endpoint = tenant.get(f"/v1/webhook-endpoints/{ep['id']}").json
    assert endpoint["failing_since"] is None and endpoint["last_success_at"]


def test_a_dead_letter_frees_its_lane_and_can_be_replayed(tenant, hooks):
    broken = {"on": True}
    rx = hooks.receiver(lambda hit, n: (503 if broken["on"] and hit.json["data"]["n"] == 0 else 200, {}, 0))
    ep = hooks.endpoint(rx)
    thread = uuid.uuid4()
    first, second = emit(tenant.id, [thread], n_each=2)
    deliver(idle_exit_s=1.0)
    done = {d["event_id"]: d for d in _deliveries(tenant, ep["id"])}
    assert done[first]["state"] == "dead" and done[first]["attempts"] == 4   # 1 + the 3 retries of the schedule
    assert done[second]["state"] == "delivered"
    assert _deliveries(tenant, ep["id"], state="dead")[0]["id"] == done[first]["id"]
    broken["on"] = False
    r = tenant.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{done[first]['id']}/replay")
    assert r.status_code == 202 and r.json["replay_of"] == done[first]["id"] and r.json["state"] == "pending"
    deliver()
    assert [h.json["id"] for h in rx.hits][-1] == first
    assert rx.hits[-1].headers["webhook-id"] == first                  # the same event: receivers deduplicate
    assert tenant.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{r.json['id']}").json["state"] == "delivered"


def test_replay_of_everything_since_a_time(tenant, hooks):
    rx = hooks.receiver()
    ep = hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4(), uuid.uuid4()], n_each=2)
    deliver()
    assert len(rx.wait_for(4)) == 4
    since = rx.bodies()[0]["timestamp"]
    r = tenant.post(f"/v1/webhook-endpoints/{ep['id']}/replay", {"since": since})
    assert r.status_code == 202 and r.json == {"queued": 4, "more": False, "next_since": None}
    deliver()
    bodies = rx.bodies()
    assert len(bodies) == 8 and sorted(b["id"] for b in bodies[4:]) == sorted(b["id"] for b in bodies[:4])
    for thread in {b["data"]["thread_id"] for b in bodies}:     # each thread's again in order
        assert [b["data"]["n"] for b in bodies[4:] if b["data"]["thread_id"] == thread] == [0, 1]
    r = tenant.post(f"/v1/webhook-endpoints/{ep['id']}/replay", {"since": since, "only_failed": True})
    assert r.json["queued"] == 0
    assert tenant.post(f"/v1/webhook-endpoints/{ep['id']}/replay", {"since": "yesterday"}).status_code == 422


def test_retry_after_is_honoured(tenant, hooks):
    rx = hooks.receiver(lambda hit, n: (429, {"Retry-After": "30"}, 0) if n == 0 else (200, {}, 0))
    ep = hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4()])
    deliver(idle_exit_s=0.2)
    [d] = _deliveries(tenant, ep["id"])
    assert d["state"] == "pending" and d["last_status_code"] == 429
    with db.connection() as conn:
        wait = conn.execute("SELECT extract(epoch FROM next_attempt_at - now()) AS s FROM webhook_deliveries "
                            "WHERE account_id = %s AND id = %s", (tenant.id, d["id"])).fetchone()["s"]
    assert 25 < wait <= 31      # not the 0.05 s of the schedule


def test_410_disables_the_endpoint_and_holds_its_deliveries_until_enabled(tenant, hooks):
    gone = {"on": True}
    rx = hooks.receiver(lambda hit, n: (410 if gone["on"] else 200, {}, 0))
    ep = hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4()])
    deliver()
    endpoint = tenant.get(f"/v1/webhook-endpoints/{ep['id']}").json
    assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]
    emit(tenant.id, [uuid.uuid4()])            # while disabled: not fanned out to it
    deliver()
    [d] = _deliveries(tenant, ep["id"])
    assert d["state"] == "pending" and d["held"] is True and d["next_attempt_at"] is None
    gone["on"] = False
    r = tenant.client.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": True}, headers=tenant.headers())
    assert r.json["enabled"] is True and r.json["disabled_reason"] is None
    deliver()
    assert len(rx.hits) == 2 and rx.hits[0].json["id"] == rx.hits[1].json["id"]


def test_an_endpoint_failing_for_too_long_is_disabled_and_says_so(tenant, hooks, monkeypatch):
    monkeypatch.setenv("GATEWAY_WEBHOOK_DISABLE_AFTER_HOURS", "0")
    monkeypatch.setenv("GATEWAY_WEBHOOK_RETRY_SCHEDULE", "0.05,0.05,0.05,0.05,0.05")
    rx = hooks.receiver(lambda hit, n: (500, {}, 0))
    ep = hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4()])
    deliver(idle_exit_s=0.5)
    endpoint = tenant.get(f"/v1/webhook-endpoints/{ep['id']}").json
    assert endpoint["enabled"] is False and "every delivery has failed since" in endpoint["disabled_reason"]
    assert 2 <= len(rx.hits) < 6


def test_a_hanging_endpoint_times_out_without_holding_up_another(tenant, hooks, monkeypatch):
    monkeypatch.setenv("GATEWAY_WEBHOOK_TIMEOUT_S", "1.5")
    monkeypatch.setenv("GATEWAY_WEBHOOK_RETRY_SCHEDULE", "60")
    slow = hooks.receiver(lambda hit, n: (200, {}, 5))
    fast = hooks.receiver()
    slow_ep = hooks.endpoint(slow)
    hooks.endpoint(fast)
    emit(tenant.id, [uuid.uuid4() for _ in range(3)])
    started = time.monotonic()
    with db.connection() as conn:
        webhook_relay.relay_all(conn)
    import threading
    job = threading.Thread(target=webhook_delivery.drain, kwargs={"idle_exit_s": 0.2})
    job.start()
    fast.wait_for(3, timeout=5)
    assert fast.hits[-1].at - started < 1.0          # long before the slow endpoint's timeout
    job.join(20)
    assert not job.is_alive()
    d = _deliveries(tenant, slow_ep["id"])
    assert all(x["attempt_log"][0]["error"] == "no answer within 1.5 s (GATEWAY_WEBHOOK_TIMEOUT_S)" for x in d)
    assert all(x["state"] == "pending" for x in d)


def test_a_rotated_secret_and_the_previous_one_both_sign_during_the_grace_period(tenant, hooks):
    rx = hooks.receiver()
    ep = hooks.endpoint(rx)
    r = tenant.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", {"grace_period_s": 3600})
    assert r.status_code == 200 and r.json["secret"] != ep["secret"] and r.json["previous_secret_valid_until"]
    emit(tenant.id, [uuid.uuid4()])
    deliver()
    [hit] = rx.wait_for(1)
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    Webhook(r.json["secret"]).verify(hit.body, hit.headers)
    Webhook(ep["secret"]).verify(hit.body, hit.headers)
    again = tenant.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", {"grace_period_s": 0})
    emit(tenant.id, [uuid.uuid4()])
    deliver()
    hit = rx.wait_for(2)[1]
    Webhook(again.json["secret"]).verify(hit.body, hit.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(r.json["secret"]).verify(hit.body, hit.headers)
    bad = tenant.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", {"grace_period_s": 10 ** 7})
    assert bad.status_code == 422


def test_no_delivery_for_a_change_that_rolled_back(tenant, hooks):
    rx = hooks.receiver()
    ep = hooks.endpoint(rx)
    with db.connection() as conn:
        events.emit(conn, tenant.id, THREAD_EVENT, {"thread_id": str(uuid.uuid4())}, subject_id=uuid.uuid4())
        conn.rollback()
    [kept] = emit(tenant.id, [uuid.uuid4()])
    deliver()
    assert [b["id"] for b in rx.bodies()] == [kept]
    assert len(_deliveries(tenant, ep["id"])) == 1


def test_another_accounts_delivery_cannot_be_read_or_replayed(tenant, make_tenant, hooks):
    rx = hooks.receiver()
    ep = hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4()])
    deliver()
    [d] = _deliveries(tenant, ep["id"])
    other = make_tenant("intruder")
    assert other.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries").status_code == 404
    assert other.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{d['id']}/replay").status_code == 404
    own = other.post("/v1/webhook-endpoints", {"url": "https://crm.example.org/h", "event_types": ["*"]}).json
    r = other.post(f"/v1/webhook-endpoints/{own['id']}/deliveries/{d['id']}/replay")
    assert r.status_code == 404
    with db.connection() as conn:
        conn.execute("DELETE FROM webhook_endpoints WHERE account_id = %s", (other.id,))
        conn.commit()


# -- end to end: a customer writes, the CRM hears it, through the real sweeper and delivery worker ------------

def _process(*args, env_extra=None):
    import os
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], env={**os.environ, **(env_extra or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(procs, sig=None):
    import os
    import signal
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, sig or signal.SIGTERM)
    for p in procs:
        p.wait(20)


def test_a_customers_message_reaches_the_crm_signed_with_its_content(client, hooks):
    from tests.gateway.test_keywords import _wa
    from tests.webhooks.conftest import make_inbox
    inbox = make_inbox(client)
    rx = hooks.receiver()
    r = inbox.api("POST", "/v1/webhook-endpoints", json={"url": rx.url, "event_types": ["message.received"]})
    secret = r.json["secret"]
    quiet = inbox.api("POST", "/v1/webhook-endpoints", json={"url": rx.url, "event_types": ["message.received"],
                                                              "include_content": False}).json
    ch = inbox.channel("whatsapp")
    procs = [_process("sweeper", env_extra={"GATEWAY_SWEEP_INTERVAL": "0.5"}), _process("worker", "webhooks")]
    try:
        _wa(inbox, ch, "¿Tenéis la talla 42?", phone="34600111222")
        hits = rx.wait_for(2, timeout=20)
    finally:
        _stop(procs)
        with db.connection() as conn:
            conn.execute("DELETE FROM webhook_endpoints WHERE account_id = %s", (inbox.account_id,))
    with_content = [h for h in hits if "content" in h.json]
    assert len(with_content) == 1 and len(hits) == 2
    payload = Webhook(secret).verify(with_content[0].body, with_content[0].headers)
    assert payload["type"] == "message.received" and payload["content"]["text"] == "¿Tenéis la talla 42?"
    assert payload["content"]["direction"] == "inbound"
    thread = inbox.threads()[0]
    assert payload["data"]["thread_id"] == thread["id"] and payload["data"]["channel_id"] == ch["id"]
    bare = [h for h in hits if "content" not in h.json][0]
    assert "34600111222" not in bare.body.decode() and "talla" not in bare.body.decode()
    assert quiet["include_content"] is False


def test_a_worker_killed_mid_delivery_leaves_nothing_undelivered(tenant, hooks, monkeypatch):
    import signal
    monkeypatch.setenv("GATEWAY_WEBHOOK_TIMEOUT_S", "1")
    rx = hooks.receiver(lambda hit, n: (200, {}, 0.02))
    hooks.endpoint(rx)
    sent = set(emit(tenant.id, [uuid.uuid4() for _ in range(20)], n_each=10))
    env = {"GATEWAY_SWEEP_INTERVAL": "0.5", "GATEWAY_WEBHOOK_TIMEOUT_S": "1"}
    procs = [_process("sweeper", env_extra=env), _process("worker", "webhooks", env_extra=env)]
    try:
        rx.wait_for(20, timeout=20)
        _stop(procs[1:], signal.SIGKILL)            # mid-batch: some deliveries stay 'delivering'
        with db.connection() as conn:                # their lease is a timeout per delivery plus a minute
            conn.execute("UPDATE webhook_deliveries SET lease_until = now() WHERE state = 'delivering' "
                         "AND account_id = %s", (tenant.id,))
        procs.append(_process("worker", "webhooks", env_extra=env))
        deadline = time.monotonic() + 30
        while {b["id"] for b in rx.bodies()} != sent:
            assert time.monotonic() < deadline, f"{len(sent - {b['id'] for b in rx.bodies()})} never arrived"
            time.sleep(0.1)
    finally:
        _stop(procs)
    order: dict = {}
    seen = set()
    for b in rx.bodies():             # at least once; each thread's first arrivals in order
        if b["id"] in seen:
            continue
        seen.add(b["id"])
        order.setdefault(b["data"]["thread_id"], []).append(b["data"]["n"])
    assert all(ns == sorted(ns) for ns in order.values())


def test_finished_deliveries_go_with_the_events_retention(tenant, hooks):
    from gateway import webhook_log
    rx = hooks.receiver()
    ep = hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4()], n_each=3)
    deliver()
    with db.connection() as conn:
        conn.execute("UPDATE webhook_deliveries SET created_at = now() - interval '31 days' WHERE account_id = %s "
                     "AND seq = (SELECT min(seq) FROM webhook_deliveries WHERE account_id = %s)", (tenant.id, tenant.id))
        conn.execute("INSERT INTO webhook_deliveries (account_id, id, endpoint_id, event_id, event_type, lane, "
                     "created_at, next_attempt_at) VALUES (%s, gen_random_uuid(), %s, gen_random_uuid(), %s, "
                     "gen_random_uuid(), now() - interval '40 days', 'infinity')", (tenant.id, ep["id"], THREAD_EVENT))
        conn.commit()
        assert webhook_log.purge_older_than(conn, days=30) == 1      # the old delivered one; a pending one stays
        conn.commit()
    states = sorted(d["state"] for d in _deliveries(tenant, ep["id"]))
    assert states == ["delivered", "delivered", "pending"]


def test_deliveries_are_counted_in_the_metrics(tenant, hooks):
    from prometheus_client.parser import text_string_to_metric_families

    def delivered() -> dict:
        text = tenant.client.get("/metrics").get_data(as_text=True)
        return {s.labels["outcome"]: s.value for f in text_string_to_metric_families(text)
                if f.name == "gateway_event_deliveries" for s in f.samples if s.name.endswith("_total")}

    before = delivered()
    rx = hooks.receiver(lambda hit, n: (500 if n == 0 else 200, {}, 0))
    hooks.endpoint(rx)
    emit(tenant.id, [uuid.uuid4()])
    deliver()
    after = delivered()
    assert after.get("delivered", 0) - before.get("delivered", 0) == 1
    assert after.get("retry", 0) - before.get("retry", 0) == 1

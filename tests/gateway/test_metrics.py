"""GET /metrics: real webhooks, sends, rate-limit waits and campaigns move the counters a Prometheus parser reads;
the endpoint is closed to strangers; in multiprocess mode other processes' samples (a gunicorn worker, an RQ
worker) appear in one scrape."""
from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import inbound, outbound, runtime
from gateway.campaigns import feeder
from tests.gateway.test_outages import _free_port
from tests.gateway.test_send_end_to_end import gateway_url, sandbox  # noqa: F401  (fixtures)
from tests.gateway.test_send_end_to_end import _setup, control, drain_sends, send, wait_for
from tests.webhooks.conftest import make_inbox, meta_raw, meta_signature
from tests.webhooks.test_receiver import text, wa_body


def parse(body: str) -> dict:
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def scrape(client, **kw) -> tuple[dict, str]:
    r = client.get("/metrics", **kw)
    assert r.status_code == 200, r.data
    assert r.mimetype == "text/plain"
    body = r.data.decode()
    return parse(body), body


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _status(inbox, message_id) -> str:
    return inbox.api("GET", f"/v1/messages/{message_id}").json["status"]


def test_webhooks_sends_and_provider_errors_are_counted(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    phone = f"34600{secrets.randbelow(10**6):06d}"
    words = f"hola-{secrets.token_hex(4)}"
    before, _ = scrape(client)

    body = wa_body(ch["external_id"], messages=[text(phone, words, ts=int(time.time()) - 5)])
    assert inbox.post_meta("whatsapp", body).status_code == 200
    assert inbox.post_meta("whatsapp", body).status_code == 200            # Meta's redelivery
    assert inbox.post_meta("whatsapp", body, secret="not-the-secret").status_code == 401
    assert client.post("/webhooks/no-such-provider", data=b"{}").status_code == 404
    inbound.flush_enqueues()
    stored, _ = scrape(client)
    assert moved(before, stored, "gateway_webhooks_received_total", provider="whatsapp", result="accepted") >= 1
    assert moved(before, stored, "gateway_webhooks_received_total", provider="whatsapp", result="duplicate") == 1
    assert moved(before, stored, "gateway_webhooks_received_total", provider="whatsapp", result="bad_signature") == 1
    assert moved(before, stored, "gateway_webhooks_received_total", provider="unknown",
                 result="unknown_provider") == 1
    assert moved(before, stored, "gateway_webhook_ingest_seconds_count", provider="whatsapp") >= 2
    assert moved(before, stored, "gateway_webhook_ingest_seconds_sum", provider="whatsapp") > 0
    # Stored and acknowledged, not applied yet: the backlog and the inbound queue hold it.
    assert value(stored, "gateway_normalisation_backlog", state="pending") >= 1
    assert value(stored, "gateway_normalisation_backlog_oldest_seconds") > 0
    assert value(stored, "gateway_queue_jobs", queue="inbound", state="queued") >= 1
    assert value(stored, "gateway_metrics_source_up", source="postgresql") == 1
    assert value(stored, "gateway_metrics_source_up", source="redis") == 1
    inbox.drain()
    contact = inbox.threads()[0]["contact_id"]

    msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": words})
    outbound.flush_enqueues()
    queued, _ = scrape(client)
    assert value(queued, "gateway_outbound_pending", status="queued") >= 1
    assert value(queued, "gateway_queue_jobs", queue="send", state="queued") >= 1
    wait_for(lambda: _status(inbox, msg["id"]) in ("sent", "delivered", "read"), inbox, what="sent")
    sent, _ = scrape(client)
    assert moved(before, sent, "gateway_sends_total", channel_kind="whatsapp", outcome="sent") >= 1
    assert moved(before, sent, "gateway_provider_request_seconds_count", provider="whatsapp") >= 1
    assert value(sent, "gateway_sends_in_flight") == 0

    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131026})
    bad = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "x"})
    wait_for(lambda: _status(inbox, bad["id"]) == "failed", inbox, what="failed")
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": None})
    after, text_body = scrape(client)
    assert moved(before, after, "gateway_provider_errors_total", provider="whatsapp", code="131026") == 1
    assert moved(before, after, "gateway_sends_total", channel_kind="whatsapp", outcome="failed") >= 1
    # Nothing personal and nothing unbounded in any label: no number, no text, no id.
    for secret in (phone, words, msg["id"], bad["id"], str(contact), str(inbox.account_id), ch["id"]):
        assert secret not in text_body


def test_rate_limit_waits_and_pair_deferrals_are_counted(client, sandbox):
    slow_inbox, slow = _setup(client, sandbox, rate_per_s=4)
    pair_inbox, pair = _setup(client, sandbox, pair_interval_s=30, pair_burst=1)
    before, _ = scrape(client)
    contacts = {}
    for inbox, ch in ((slow_inbox, slow), (pair_inbox, pair)):
        phone = f"34600{secrets.randbelow(10**6):06d}"
        inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(phone, "hola", ts=int(time.time()))]))
        inbox.drain()
        contacts[ch["id"]] = inbox.threads()[0]["contact_id"]
    # Three at 4/s: the token bucket makes the later ones wait in the worker.
    slow_ids = [send(slow_inbox, channel_id=slow["id"], contact_id=contacts[slow["id"]], type="text",
                     text={"body": f"n{i}"})["id"] for i in range(3)]
    # Two to one customer with a pair limit of one per 30 s: the second is held back, not waited for.
    pair_ids = [send(pair_inbox, channel_id=pair["id"], contact_id=contacts[pair["id"]], type="text",
                     text={"body": f"p{i}"})["id"] for i in range(2)]
    wait_for(lambda: all(_status(slow_inbox, i) in ("sent", "delivered", "read") for i in slow_ids)
             and _status(pair_inbox, pair_ids[0]) in ("sent", "delivered", "read")
             and _status(pair_inbox, pair_ids[1]) == "retry_scheduled", slow_inbox, what="waits and a held message")
    after, _ = scrape(client)
    assert moved(before, after, "gateway_ratelimit_wait_seconds_count", limiter="channel") >= 1
    assert moved(before, after, "gateway_ratelimit_wait_seconds_sum", limiter="channel") > 0.1
    assert moved(before, after, "gateway_ratelimit_deferred_total", limiter="pair") >= 1
    assert moved(before, after, "gateway_sends_total", channel_kind="whatsapp", outcome="held") >= 1


def test_campaign_progress_is_read_at_scrape_time(client, sandbox):
    inbox = make_inbox(client)
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}",
                        settings={"api_base_url": sandbox.url, "rate_per_s": 100})
    ids = []
    for _ in range(3):
        r = inbox.api("POST", "/v1/contacts", json={"identities": [
            {"kind": "phone", "address": f"+34600{secrets.randbelow(10**6):06d}"}]})
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    r = inbox.api("POST", "/v1/campaigns", json={
        "name": f"aviso-{secrets.token_hex(3)}", "purpose": "utility", "channel_id": sms["id"],
        "message": {"text": "Mañana cerramos a las 14:00."}, "audience": {"contact_ids": ids},
        "canary": {"size": 0}})
    assert r.status_code == 201, r.json
    campaign = r.json
    before, _ = scrape(client)
    assert inbox.api("POST", f"/v1/campaigns/{campaign['id']}/start").status_code == 200
    deadline = time.monotonic() + 20
    while inbox.api("GET", f"/v1/campaigns/{campaign['id']}").json["counts"]["queued"] < 3:
        assert time.monotonic() < deadline, "the feeder did not queue the recipients"
        feeder.tick_once()
        time.sleep(0.05)
    after, _ = scrape(client)
    assert moved(before, after, "gateway_campaign_recipients_fed_total", result="queued") >= 3
    assert value(after, "gateway_campaign_recipients", campaign_state="running", state="queued") >= 3
    assert value(after, "gateway_campaigns", state="running") >= 1
    drain_sends(inbox)


def test_the_endpoint_is_loopback_only_without_a_token(client):
    assert client.get("/metrics").status_code == 200
    far = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert far.status_code == 403 and far.mimetype == "application/problem+json"
    assert far.json["type"].endswith("/metrics-forbidden") and "GATEWAY_METRICS_TOKEN" in far.json["detail"]
    # A proxy on this host relays strangers from the loopback address; its headers say so.
    relayed = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_a_token_is_required_once_set(client, monkeypatch):
    token = secrets.token_urlsafe(32)
    monkeypatch.setattr(runtime, "_settings", dataclasses.replace(runtime.settings(), metrics_token=token))
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.mimetype == "application/problem+json"
    assert missing.json["status"] == 401 and "Bearer" in missing.json["detail"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + secrets.token_urlsafe(32)})
    assert wrong.status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {token}"},
                    environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert ok.status_code == 200
    assert "gateway_webhooks_received_total" in {f.name + "_total" for f in text_string_to_metric_families(
        ok.data.decode()) if f.type == "counter"}


def test_the_token_setting_is_validated():
    from gateway.config import ConfigError, load_settings
    with pytest.raises(ConfigError) as exc:
        load_settings({**os.environ, "GATEWAY_METRICS_TOKEN": "short"})
    assert any("GATEWAY_METRICS_TOKEN" in line for line in exc.value.problems)
    good = secrets.token_urlsafe(24)
    settings = load_settings({**os.environ, "GATEWAY_METRICS_TOKEN": good})
    assert settings.metrics_token == good and good not in repr(settings)


def test_samples_of_other_processes_appear_and_live_gauges_leave_with_them(client, tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    code = ("import sys\n"
            "from gateway import metrics\n"
            "metrics.EVENT_DELIVERIES.labels('delivered').inc(3)\n"
            "metrics.EVENT_DELIVERIES.labels('retry').inc()\n"
            "metrics.EVENT_DELIVERY_SECONDS.observe(0.2)\n"
            "metrics.SENDS_IN_FLIGHT.inc(2)\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
        both, _ = scrape(client)
        assert value(both, "gateway_event_deliveries_total", outcome="delivered") == 6
        assert value(both, "gateway_event_deliveries_total", outcome="retry") == 2
        assert value(both, "gateway_event_delivery_seconds_count") == 2
        assert value(both, "gateway_sends_in_flight") == 4
        assert value(both, "gateway_metrics_source_up", source="postgresql") == 1   # read here, once
        procs[0].stdin.write("\n")
        procs[0].stdin.flush()
        assert procs[0].wait(timeout=30) == 0
        one, _ = scrape(client)
        # Counters keep a finished process's counts; a live gauge forgets it.
        assert value(one, "gateway_event_deliveries_total", outcome="delivered") == 6
        assert value(one, "gateway_sends_in_flight") == 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_preparing_the_folder_keeps_live_processes_files(tmp_path):
    from gateway.multiproc import prepare_dir
    mine = tmp_path / f"counter_{os.getpid()}.db"
    gone = tmp_path / "counter_999999999.db"
    for f in (mine, gone):
        f.write_bytes(b"")
    prepare_dir(tmp_path, wipe=False)
    assert mine.exists() and not gone.exists()
    prepare_dir(tmp_path, wipe=True)
    assert not mine.exists()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_gunicorn_and_an_rq_worker_share_one_scrape(client, sandbox, tmp_path):
    inbox, ch = _setup(client, sandbox)
    folder = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_METRICS_TOKEN"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    port = _free_port()
    log = (tmp_path / "web.log").open("w")
    web = subprocess.Popen([sys.executable, "-m", "gateway.cli", "web", "--port", str(port), "--workers", "2"],
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()[-3000:]
                time.sleep(0.1)
        phone = f"34600{secrets.randbelow(10**6):06d}"
        raw = meta_raw(wa_body(ch["external_id"], messages=[text(phone, "hola", ts=int(time.time()))]))
        req = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/whatsapp", data=raw, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-Hub-Signature-256": meta_signature(raw)})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        # The web process hands the job to Redis just after its answer, on a thread of its own.
        threads = wait_for(inbox.threads, inbox, what="the webhook applied")
        contact = threads[0]["contact_id"]
        msg = send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "hola"})
        outbound.flush_enqueues()
        worker = subprocess.run([sys.executable, "-m", "gateway.cli", "worker", "send", "--burst"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stderr[-2000:]
        assert _status(inbox, msg["id"]) in ("sent", "delivered", "read")
        samples = parse(_get(f"http://127.0.0.1:{port}/metrics"))
        # Counted in a gunicorn worker and in the RQ worker's process; this test process writes no files.
        assert value(samples, "gateway_webhooks_received_total", provider="whatsapp", result="accepted") >= 1
        assert value(samples, "gateway_sends_total", channel_kind="whatsapp", outcome="sent") >= 1
        assert value(samples, "gateway_provider_request_seconds_count", provider="whatsapp") >= 1
        assert value(samples, "gateway_metrics_source_up", source="redis") == 1
        assert {f.name.split("_", 1)[0] for f in folder.iterdir()} >= {"counter", "histogram"}
        # The RQ worker took its live gauges along when it exited; a gunicorn worker that dies has them dropped
        # by the master's child_exit hook.
        live = sorted(folder.glob("gauge_livesum_*.db"))
        assert len(live) == 2
        os.kill(int(live[0].stem.rsplit("_", 1)[1]), signal.SIGKILL)
        deadline = time.monotonic() + 15
        while live[0].exists():
            assert time.monotonic() < deadline, "child_exit did not drop the dead worker's live gauges"
            time.sleep(0.1)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=20)

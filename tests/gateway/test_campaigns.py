"""Campaigns end to end: the API → the feeder → the one send gate → RQ send workers → the sandbox provider, with
status webhooks coming back. Per-recipient skips, pacing measured at the sandbox, the messaging limit, the canary
auto-pause, Meta pausing the template, pause/resume/cancel, replies to customers during a campaign, and a
crash (worker killed, Redis flushed) with every recipient sent exactly once."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from gateway import outbound, sweeper
from gateway.campaigns import feeder, prepare
from tests.gateway.test_send_end_to_end import gateway_url, sandbox  # noqa: F401  (fixtures)
from tests.gateway.test_send_end_to_end import control, drain_sends, received
from tests.webhooks.conftest import make_inbox

TEMPLATE = {"name": "renovacion", "language": "es", "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hola {{1}}, tu plan {{2}} se renueva el {{3}}.",
                            "example": {"body_text": [["Ana", "Plus", "1 de diciembre"]]}}]}
MAPPING = [{"attribute": "first_name", "default": "cliente"}, {"attribute": "plan"}, {"constant": "1 de diciembre"}]


def _setup(client, sandbox, **settings):
    inbox = make_inbox(client)
    waba = f"WABA{secrets.randbelow(10**9)}"
    settings = {"api_base_url": sandbox.url, "pair_interval_s": 0, **settings}
    ch = inbox.channel("whatsapp", group_id=waba, settings=settings)
    r = inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **TEMPLATE})
    assert r.status_code == 201, r.json
    return inbox, ch


def _contact(inbox, phone=None, *, consent=True, profile=None, withdrawn=False, language="es"):
    phone = phone or f"+34600{secrets.randbelow(10**6):06d}"
    r = inbox.api("POST", "/v1/contacts", json={"language": language, "profile": profile or {"plan": "Plus"},
                                                "identities": [{"kind": "phone", "address": phone}]})
    assert r.status_code == 201, r.json
    cid = r.json["id"]
    if consent:
        _consent(inbox, cid, "marketing", "granted")
    if withdrawn:
        _consent(inbox, cid, "all", "withdrawn")
    return cid, phone


def _consent(inbox, cid, purpose, action):
    body = {"channel_kind": "all", "purpose": purpose, "action": action, "source": "web_form"}
    if action == "granted":
        body["proof"] = {"text": "Quiero recibir ofertas", "text_version": "v1", "form_submission_id": "f-1"}
    r = inbox.api("POST", f"/v1/contacts/{cid}/consents", json=body)
    assert r.status_code == 201, r.json


def _campaign(inbox, ch, contact_ids, **extra):
    body = {"name": f"renewal-{secrets.token_hex(3)}", "purpose": "marketing", "channel_id": ch["id"],
            "message": {"template": {"name": "renovacion", "parameters": MAPPING}},
            "audience": {"contact_ids": contact_ids}, "canary": {"size": 0}, **extra}
    r = inbox.api("POST", "/v1/campaigns", json=body)
    assert r.status_code == 201, r.json
    return r.json


def _act(inbox, campaign, action, status=200):
    r = inbox.api("POST", f"/v1/campaigns/{campaign['id']}/{action}")
    assert r.status_code == status, r.json
    return r.json


def _get(inbox, campaign):
    return inbox.api("GET", f"/v1/campaigns/{campaign['id']}").json


def _run(inbox, until, timeout=30.0, what="campaign", workers=True):
    """Drive the feeder, the send workers and the inbound worker here until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        feeder.tick_once()
        if workers:
            drain_sends(inbox)
            inbox.drain(("inbound",))
            sweeper.sweep_once(grace_s=0)
        value = until()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _templates_to(sandbox) -> list[dict]:
    return [m for m in received(sandbox) if m["http_status"] == 200 and m["body"].get("type") == "template"]


def _settled(inbox, campaign):
    def check():
        c = _get(inbox, campaign)
        n = c["counts"]
        return c["state"] == "completed" and n["queued"] == 0 and c
    return check


# --- the whole path ----------------------------------------------------------------------------------------

def test_a_campaign_sends_once_per_consenting_recipient_and_records_every_skip(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    ana, ana_phone = _contact(inbox, profile={"first_name": "Ana", "plan": "Plus"})
    nameless, nameless_phone = _contact(inbox, profile={"plan": "Basic"})          # the default fills the name
    no_consent, _ = _contact(inbox, consent=False)
    stopped, _ = _contact(inbox, withdrawn=True)
    no_plan, _ = _contact(inbox, profile={"first_name": "Luis"})                   # a mapped value missing
    page = inbox.channel("messenger", settings={"api_base_url": sandbox.url})      # no phone at all
    psid_only = inbox.api("POST", "/v1/contacts", json={"profile": {"plan": "Plus"},
                                                      "identities": [{"kind": "psid", "address": "PSID-c1"}]}).json
    _consent(inbox, psid_only["id"], "marketing", "granted")
    audience = [ana, nameless, no_consent, stopped, no_plan, psid_only["id"], ana]    # ana twice: one recipient
    campaign = _campaign(inbox, ch, audience)
    assert campaign["state"] == "draft" and page["id"]

    dry = inbox.api("POST", f"/v1/campaigns/{campaign['id']}/dry-run").json
    assert dry["recipients"] == 6 and dry["would_send"] == 2
    assert dry["skipped"] == {"no_marketing_consent": 1, "opted_out": 1, "parameters_missing": 1,
                              "no_address_for_channel": 1}
    assert dry["estimated_duration_s"] >= 1 and _templates_to(sandbox) == []

    started = _act(inbox, campaign, "start")
    assert started["state"] == "running" and started["changed"] is True
    assert _act(inbox, campaign, "start")["changed"] is False          # starting twice changes nothing
    done = _run(inbox, _settled(inbox, campaign), what="the campaign to complete")
    counts = done["counts"]
    assert counts["recipients"] == 6 and counts["sent"] == 2 and counts["skipped"] == dry["skipped"]
    sends = {m["body"]["to"].lstrip("+"): m["body"]["template"] for m in _templates_to(sandbox)}
    assert set(sends) == {ana_phone.lstrip("+"), nameless_phone.lstrip("+")}
    texts = {to: [p["text"] for p in t["components"][0]["parameters"]] for to, t in sends.items()}
    assert texts[ana_phone.lstrip("+")] == ["Ana", "Plus", "1 de diciembre"]
    assert texts[nameless_phone.lstrip("+")] == ["cliente", "Basic", "1 de diciembre"]
    assert all(t["language"]["code"] == "es" for t in sends.values())
    # Statuses come back from the provider: delivered and read count up.
    _run(inbox, lambda: _get(inbox, campaign)["counts"]["read"] == 2, what="read statuses")
    # Per-recipient results, as CSV with the address.
    csv_text = inbox.api("GET", f"/v1/campaigns/{campaign['id']}/recipients?format=csv").text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("seq,contact_id,address,state,skip_reason") and len(lines) == 7
    assert any(ana_phone in line and ",queued," in line and ",read," in line for line in lines)
    # A reply from a recipient counts as replied.
    from tests.webhooks.test_receiver import text, wa_body
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(ana_phone.lstrip("+"), "¡Gracias!",
                                                                          ts=int(time.time()))]))
    _run(inbox, lambda: _get(inbox, campaign)["counts"]["replied"] == 1, what="the reply counted")
    # The list gives the same counts with counts=true (a dashboard's one read), none without.
    listed = inbox.api("GET", "/v1/campaigns?counts=true").json["data"]
    assert [c["counts"] for c in listed] == [_get(inbox, campaign)["counts"]]
    assert "counts" not in inbox.api("GET", "/v1/campaigns").json["data"][0]
    assert inbox.api("GET", "/v1/campaigns?counts=yes").status_code == 400
    # The contact's data export names the campaign and what happened to them in it.
    exported = inbox.api("GET", f"/v1/contacts/{ana}/export").json["campaigns"]
    assert [(e["campaign_id"], e["state"]) for e in exported] == [(campaign["id"], "queued")]
    # The CLI shows the same progress; a completed campaign exits 0 (and the bar ends at once).
    for args in (["--once"], ["--interval", "0.1"]):
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "campaigns", "watch", campaign["id"], *args],
                             capture_output=True, text=True, env=os.environ, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "completed  sent 2 (delivered 2, read 2, replied 1)" in out.stdout
        assert "skipped no_address_for_channel: 1, no_marketing_consent: 1, opted_out: 1" in out.stdout


def test_pacing_holds_at_the_sandbox(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    control(sandbox, "/_sandbox/config", {"callbacks": False})
    ids = [_contact(inbox)[0] for _ in range(24)]
    campaign = _campaign(inbox, ch, ids, pace_per_s=6)
    _act(inbox, campaign, "start")
    _run(inbox, lambda: len(_templates_to(sandbox)) == 24, what="every send")
    stamps = sorted(m["received_at"] for m in _templates_to(sandbox))
    worst, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1000:
            j += 1
        worst = max(worst, i - j + 1)
    assert worst <= 7, f"{worst} sends within one second at a pace of 6/s"
    assert (stamps[-1] - stamps[0]) / 1000 >= (24 - 7) / 6 * 0.9


def test_the_messaging_limit_holds_a_campaign_and_says_so(client, sandbox):
    inbox, ch = _setup(client, sandbox, messaging_limit=3)
    ids = [_contact(inbox)[0] for _ in range(5)]
    campaign = _campaign(inbox, ch, ids)
    dry = inbox.api("POST", f"/v1/campaigns/{campaign['id']}/dry-run").json
    assert dry["messaging_limit"]["remaining"] == 3 and "over the remaining limit" in dry["messaging_limit"]["note"]
    _act(inbox, campaign, "start")
    waiting = _run(inbox, lambda: (c := _get(inbox, campaign))["waiting"] and c, what="the limit to bite")
    assert waiting["waiting"].startswith("messaging limit: 3 of 3") and waiting["state"] == "running"
    assert len(_templates_to(sandbox)) == 3 and waiting["counts"]["pending"] == 2


def test_the_canary_pauses_on_a_131049_storm(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131049, "async_failure": True})
    ids = [_contact(inbox)[0] for _ in range(30)]
    campaign = _campaign(inbox, ch, ids, canary={"size": 8, "max_blocked_rate": 0.25})
    _act(inbox, campaign, "start")
    paused = _run(inbox, lambda: (c := _get(inbox, campaign))["state"] == "paused" and c, what="the auto-pause")
    assert "131049" in paused["state_reason"] and "canary" in paused["state_reason"]
    assert len(_templates_to(sandbox)) == 8 and paused["counts"]["failed"] == {"131049": 8}
    assert paused["counts"]["pending"] == 22
    # Resumed by a person (after fixing things), it goes on: the sandbox now delivers.
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": None, "async_failure": False})
    body = _act(inbox, campaign, "resume")
    assert body["state"] == "running"


def test_meta_pausing_the_template_pauses_the_campaign(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    ids = [_contact(inbox)[0] for _ in range(20)]
    campaign = _campaign(inbox, ch, ids, pace_per_s=4)
    _act(inbox, campaign, "start")
    _run(inbox, lambda: len(_templates_to(sandbox)) >= 2, what="the first sends")
    meta_id = inbox.api("GET", f"/v1/templates/renovacion?channel_id={ch['id']}&language=es").json["meta_id"]
    control(sandbox, f"/_sandbox/templates/{meta_id}/status", {"status": "PAUSED", "reason": "LOW_QUALITY"})
    paused = _run(inbox, lambda: (c := _get(inbox, campaign))["state"] == "paused" and c, what="the pause")
    assert "PAUSED at Meta" in paused["state_reason"]
    sent_then = len(_templates_to(sandbox))
    _run(inbox, lambda: True)
    time.sleep(0.5)
    _run(inbox, lambda: True)
    assert len(_templates_to(sandbox)) == sent_then < 20


def test_pause_resume_cancel_and_wrong_states(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    ids = [_contact(inbox)[0] for _ in range(12)]
    campaign = _campaign(inbox, ch, ids, pace_per_s=3)
    assert inbox.api("POST", f"/v1/campaigns/{campaign['id']}/resume").status_code == 409
    _act(inbox, campaign, "start")
    _run(inbox, lambda: len(_templates_to(sandbox)) >= 2, what="the first sends")
    assert _act(inbox, campaign, "pause")["state"] == "paused"
    _run(inbox, lambda: True)
    time.sleep(0.6)
    _run(inbox, lambda: True)
    held = len(_templates_to(sandbox))
    time.sleep(0.6)
    feeder.tick_once()
    assert len(_templates_to(sandbox)) == held < 12
    _act(inbox, campaign, "resume")
    _run(inbox, lambda: len(_templates_to(sandbox)) >= held + 2, what="sends after resuming")
    cancelled = _act(inbox, campaign, "cancel")
    assert cancelled["state"] == "cancelled"
    assert inbox.api("POST", f"/v1/campaigns/{campaign['id']}/start").status_code == 409
    r = inbox.api("POST", f"/v1/campaigns/{campaign['id']}/resume")
    assert r.status_code == 409 and "cancelled campaign cannot be resumed" in r.json["detail"]
    _run(inbox, lambda: True)
    final = len(_templates_to(sandbox))
    time.sleep(0.5)
    feeder.tick_once()
    assert len(_templates_to(sandbox)) == final < 12


def test_replies_to_customers_are_not_held_behind_a_campaign(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    ids = [_contact(inbox)[0] for _ in range(40)]
    campaign = _campaign(inbox, ch, ids, pace_per_s=8)
    _act(inbox, campaign, "start")
    _run(inbox, lambda: len(_templates_to(sandbox)) >= 5, what="the campaign under way")
    from tests.webhooks.test_receiver import text, wa_body
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text("34699000111", "¿Abrís mañana?",
                                                                          ts=int(time.time()))]))
    inbox.drain(("inbound",))
    customer = [t for t in inbox.threads() if t["last_inbound_at"]][0]["contact_id"]
    reply = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": customer, "type": "text",
                                                    "text": {"body": "Sí, de 9 a 18."}}).json
    started = time.monotonic()
    _run(inbox, lambda: inbox.api("GET", f"/v1/messages/{reply['id']}").json["status"] in ("sent", "delivered", "read"),
         what="the reply sent")
    assert time.monotonic() - started < 3
    assert _get(inbox, campaign)["state"] == "running"    # the campaign was still going


# --- crash-proof ---------------------------------------------------------------------------------------------

def _process(*args, env_extra=None):
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], env={**os.environ, **(env_extra or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_workers_killed_and_redis_flushed_mid_campaign_send_everyone_exactly_once(client, sandbox, redis):
    inbox, ch = _setup(client, sandbox)
    control(sandbox, "/_sandbox/config", {"latency_ms": 30})
    recipients = [_contact(inbox) for _ in range(60)]
    campaign = _campaign(inbox, ch, [c for c, _ in recipients], pace_per_s=30)
    _act(inbox, campaign, "start")
    env = {"GATEWAY_SWEEP_INTERVAL": "0.5", "GATEWAY_SEND_RECONCILE_S": "1"}
    procs = [_process("sweeper", env_extra=env), _process("worker", env_extra=env)]
    try:
        deadline = time.monotonic() + 30
        while len(_templates_to(sandbox)) < 15:
            assert time.monotonic() < deadline, "the campaign did not get going"
            time.sleep(0.1)
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)         # no goodbye: mid-batch, mid-request
        for p in procs:
            p.wait(timeout=10)
        redis.flushall()                             # every queued job gone
        procs = [_process("sweeper", env_extra=env), _process("worker", env_extra=env)]
        done = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            c = _get(inbox, campaign)
            if c["state"] == "completed" and c["counts"]["queued"] == 0:
                done = c
                break
            time.sleep(0.3)
        assert done is not None, _get(inbox, campaign)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    to = [m["body"]["to"] for m in _templates_to(sandbox)]
    assert sorted(to) == sorted(phone.lstrip("+") for _, phone in recipients)   # each exactly once
    assert done["counts"]["sent"] + done["counts"]["failed_total"] == 60


# --- bad input -------------------------------------------------------------------------------------------------

def test_bad_campaigns_get_422_naming_each_problem(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    cid, _ = _contact(inbox)
    base = {"name": "x", "purpose": "marketing", "channel_id": ch["id"],
            "message": {"template": {"name": "renovacion", "parameters": MAPPING}}, "audience": {"contact_ids": [cid]}}

    def problems(**change):
        r = inbox.api("POST", "/v1/campaigns", json={**base, **change})
        assert r.status_code == 422, r.json
        return {e["pointer"]: e["detail"] for e in r.json["errors"]}

    assert "/message/template/name" in problems(message={"template": {"name": "nope"}})
    covered = problems(message={"template": {"name": "renovacion", "parameters": MAPPING[:2]}})
    assert "/message/template/parameters" in covered
    assert "/message/text" in problems(message={"text": "Hola"})          # free text on WhatsApp
    assert "/audience" in problems(audience={"segment": {"tags": ["nadie-tiene-esta"]}})
    got = problems(purpose="spam", pace_per_s=0, colour="red", quiet_hours={"from": "25:00", "to": "08:00"})
    assert {"/purpose", "/pace_per_s", "/colour", "/quiet_hours/from"} <= set(got)
    assert inbox.api("GET", "/v1/campaigns").json["data"] == []


def test_a_segment_audience_and_quiet_hours(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    vip, _ = _contact(inbox, profile={"plan": "Plus", "tags": ["vip"], "city": "Madrid"})
    _contact(inbox, profile={"plan": "Plus", "tags": ["vip"], "city": "Bilbao"})
    _contact(inbox, profile={"plan": "Plus"})
    body = {"name": "vip-madrid", "purpose": "marketing", "channel_id": ch["id"],
            "message": {"template": {"name": "renovacion", "parameters": MAPPING}},
            "audience": {"segment": {"tags": ["vip"], "attributes": {"city": "madrid"}, "consent": "marketing"}},
            "canary": {"size": 0}}
    dry = inbox.api("POST", "/v1/campaigns/dry-run", json=body)
    assert dry.status_code == 200 and dry.json["recipients"] == 1 and dry.json["would_send"] == 1
    # Quiet all day but a minute: the recipient waits, and the campaign says so.
    now = datetime.now(ZoneInfo("Europe/Madrid"))
    start = (now.replace(second=0, microsecond=0)).strftime("%H:%M")
    end = (now.replace(second=0, microsecond=0) + __import__("datetime").timedelta(minutes=-1)).strftime("%H:%M")
    r = inbox.api("POST", "/v1/campaigns", json={**body, "quiet_hours": {"from": start, "to": end,
                                                                           "timezone": "Europe/Madrid"}})
    assert r.status_code == 201, r.json
    _act(inbox, r.json, "start")
    waiting = _run(inbox, lambda: (c := _get(inbox, r.json))["waiting"] and c, what="quiet hours")
    assert waiting["waiting"].startswith("quiet hours: 1 recipient") and _templates_to(sandbox) == []
    assert vip


def test_quiet_hours_in_the_recipients_zone():
    quiet = {"from": "21:00", "to": "09:00"}
    madrid = ZoneInfo("Europe/Madrid")
    # 22:30 in Madrid (21:30Z in winter): quiet until 09:00 Madrid the next day.
    until = prepare.defer_until(datetime(2026, 11, 24, 21, 30, tzinfo=timezone.utc), quiet, madrid)
    assert until == datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
    # 07:00 Madrid: quiet until 09:00 the same day; 12:00: not quiet.
    assert prepare.defer_until(datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc), quiet, madrid) == \
        datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    assert prepare.defer_until(datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc), quiet, madrid) is None
    # The zone comes from an attribute, else the number (Mexico City for +52 55…), else the fallback.
    assert prepare.recipient_zone({"timezone": "America/Lima"}, "+34600000000", "UTC").key == "America/Lima"
    assert prepare.recipient_zone({}, "+34612345678", "Europe/Madrid").key == "Europe/Madrid"
    assert prepare.recipient_zone({}, "+525512345678", "UTC").key == "America/Mexico_City"
    assert prepare.recipient_zone({}, None, "Asia/Tokyo").key == "Asia/Tokyo"


@pytest.fixture(autouse=True)
def _flush_enqueues():
    yield
    outbound.flush_enqueues()


def test_an_sms_text_campaign_and_a_scheduled_start(client, sandbox):
    inbox = make_inbox(client)
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}", settings={"api_base_url": sandbox.url})
    ana, ana_phone = _contact(inbox, profile={"first_name": "Ana"})
    luis, luis_phone = _contact(inbox, profile={"first_name": "Luis"})
    nameless, _ = _contact(inbox, profile={})
    start_at = datetime.fromtimestamp(time.time() + 2, tz=timezone.utc).isoformat()
    r = inbox.api("POST", "/v1/campaigns", json={
        "name": "cita", "purpose": "utility", "channel_id": sms["id"], "start_at": start_at,
        "message": {"text": "Hola {first_name}, mañana tienes cita a las 10:00. Responde C para confirmar."},
        "audience": {"contact_ids": [ana, luis, nameless]}, "canary": {"size": 0}})
    assert r.status_code == 201, r.json
    campaign = r.json
    assert _act(inbox, campaign, "start")["state"] == "scheduled"
    feeder.tick_once()
    assert _get(inbox, campaign)["state"] == "scheduled"          # not before its time
    done = _run(inbox, _settled(inbox, campaign), what="the SMS campaign")
    assert done["counts"]["skipped"] == {"parameters_missing": 1}
    bodies = {m["body"]["To"]: m["body"]["Body"] for m in received(sandbox) if 200 <= m["http_status"] < 300}
    assert bodies == {ana_phone: "Hola Ana, mañana tienes cita a las 10:00. Responde C para confirmar.",
                      luis_phone: "Hola Luis, mañana tienes cita a las 10:00. Responde C para confirmar."}


def test_each_recipient_gets_the_template_in_their_language(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    english = dict(TEMPLATE, language="en", components=[
        {"type": "BODY", "text": "Hi {{1}}, your {{2}} plan renews on {{3}}.",
         "example": {"body_text": [["Ann", "Plus", "December 1"]]}}])
    assert inbox.api("POST", "/v1/templates", json={"channel_id": ch["id"], **english}).status_code == 201
    ann, ann_phone = _contact(inbox, language="en", profile={"first_name": "Ann", "plan": "Plus"})
    ana, ana_phone = _contact(inbox, language="es", profile={"first_name": "Ana", "plan": "Plus"})
    other, other_phone = _contact(inbox, language="fr", profile={"first_name": "Zoé", "plan": "Plus"})
    with __import__("gateway").db.connection() as c:
        c.execute("UPDATE accounts SET default_language = 'es' WHERE id = %s", (inbox.account_id,))
    campaign = _campaign(inbox, ch, [ann, ana, other])
    _act(inbox, campaign, "start")
    _run(inbox, _settled(inbox, campaign), what="the campaign")
    languages = {m["body"]["to"]: m["body"]["template"]["language"]["code"] for m in _templates_to(sandbox)}
    assert languages == {ann_phone.lstrip("+"): "en", ana_phone.lstrip("+"): "es",
                         other_phone.lstrip("+"): "es"}     # French falls back to the account's default


def test_a_csv_import_is_the_audience_and_its_columns_fill_the_template(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    csv_body = ("phone,name,language,plan,renews,consent_marketing,consent_source_text,consent_text_version\n"
                "+34612000001,Ana,es,Plus,1 de diciembre,yes,Quiero ofertas,v1\n"
                "+34612000002,Luis,es,Basic,3 de diciembre,yes,Quiero ofertas,v1\n"
                "+34612000003,Eva,es,Plus,5 de diciembre,,,\n"            # no consent: skipped for marketing
                "not-a-phone,Nadie,es,Plus,6 de diciembre,yes,Quiero ofertas,v1\n")
    r = inbox.api("POST", "/v1/contacts/import?default_region=ES", data=csv_body.encode(),
                  headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.json
    assert r.json["imported"] == 3 and [e["line"] for e in r.json["errors"]] == [5]
    mapping = [{"contact": "name"}, {"attribute": "plan"}, {"column": "renews"}]
    r2 = inbox.api("POST", "/v1/campaigns", json={
        "name": "renewals", "purpose": "marketing", "channel_id": ch["id"], "canary": {"size": 0},
        "message": {"template": {"name": "renovacion", "parameters": mapping}},
        "audience": {"import_id": r.json["import_id"]}})
    assert r2.status_code == 201, r2.json
    campaign = r2.json
    _act(inbox, campaign, "start")
    done = _run(inbox, _settled(inbox, campaign), what="the campaign")
    assert done["counts"]["skipped"] == {"no_marketing_consent": 1}
    got = {m["body"]["to"]: [p["text"] for p in m["body"]["template"]["components"][0]["parameters"]]
           for m in _templates_to(sandbox)}
    assert got == {"34612000001": ["Ana", "Plus", "1 de diciembre"], "34612000002": ["Luis", "Basic", "3 de diciembre"]}
    # The import's own values are the contact's data too: the export has them.
    [ana] = [c for c in inbox.api("GET", "/v1/contacts?limit=50").json["data"] if c.get("name") == "Ana"]
    exported = inbox.api("GET", f"/v1/contacts/{ana['id']}/export").json
    assert exported["imports"][0]["values"]["renews"] == "1 de diciembre"

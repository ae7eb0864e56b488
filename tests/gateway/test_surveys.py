"""CSAT / NPS / CES surveys: resolving a thread over the API sends the account's survey through the one send gate
and the sandbox provider; answers are parsed from taps or digits, stored once, expire, and carry an encrypted
free-text comment; GET /v1/surveys/responses lists them.

The inbound half (webhook → worker → automation engine → surveys) runs end to end once the automation engine
offers inbound messages to ``surveys.on_inbound``; until then those tests skip, and the storing functions are
tested on real rows through ``surveys.handle_recorded``, the engine's entry point."""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta, timezone

import pytest

from gateway import db, messages, surveys
from tests.gateway.test_keywords import _channel, _messenger, _sms, _wa
from tests.gateway.test_send_end_to_end import gateway_url, received, sandbox, wait_for  # noqa: F401  (fixtures)
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import wa_body


def _wired() -> bool:
    """Whether the automation engine offers inbound messages to the surveys (the integrator's wiring)."""
    try:
        from gateway.automation import engine
    except ImportError:
        return False
    ours = (surveys.on_inbound, surveys.handle_recorded)

    def calls_ours(item) -> bool:
        # A responder may hold our function directly, or wrap it (engine.consumer(surveys.on_inbound) keeps it
        # in its closure).
        parts = [item, *(vars(item).values() if hasattr(item, "__dict__") and not callable(item) else ())]
        for part in parts:
            if part in ours or any(cell.cell_contents in ours for cell in (getattr(part, "__closure__", None) or ())):
                return True
        return False

    return any(calls_ours(item) for item in getattr(engine, "RESPONDERS", ()))


needs_engine = pytest.mark.skipif(not _wired(), reason="the automation engine does not call surveys.on_inbound yet")


# --- helpers ---------------------------------------------------------------------------------------------

def _configure(inbox, kind="csat", follow_up=None, expiry_hours=72, **extra):
    body = {"kind": kind, "questions": {"en": "How did we do?", "es": "¿Qué tal te atendimos?"},
            "expiry_hours": expiry_hours, **extra}
    if follow_up:
        body["follow_up"] = {"en": follow_up}
    r = inbox.api("PUT", "/v1/surveys/config", json=body)
    assert r.status_code == 200, r.json
    return r.json


def _resolve(inbox, thread_id, status="resolved", **extra):
    r = inbox.api("POST", f"/v1/threads/{thread_id}/status", json={"status": status, **extra})
    assert r.status_code == 200, r.json
    return r.json


def _thread(inbox, kind):
    return [t for t in inbox.threads() if t["channel_kind"] == kind][0]


def _wa_customer(client, sandbox, phone=None, **settings):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp", sandbox)
    phone = phone or f"34600{secrets.randbelow(10**6):06d}"
    _wa(inbox, ch, "hola, ya está resuelto, gracias", phone=phone)
    return inbox, ch, _thread(inbox, "whatsapp"), phone


def _sent(inbox, message_id):
    return wait_for(lambda: inbox.api("GET", f"/v1/messages/{message_id}").json["status"] in ("sent", "delivered", "read"),
                    inbox, what="survey sent")


def _requests(inbox, thread_id):
    return inbox.api("GET", f"/v1/threads/{thread_id}/surveys").json["data"]


def _record_answer(inbox, thread, *, kind="text", body=None, content=None, occurred_at=None):
    """A customer message as a real row (the inbound worker writes the same), for the storing unit tests."""
    with db.connection() as conn:
        row = messages.record_message(conn, account_id=inbox.account_id, contact_id=thread["contact_id"],
                                      channel_id=thread["channel_id"], direction="inbound", body=body, kind=kind,
                                      provider_message_id=f"wamid.{secrets.token_hex(8)}", content=content,
                                      occurred_at=occurred_at)
    return row


def _handle(inbox, message_id, send_ids=None) -> bool:
    with db.connection() as conn:
        return surveys.handle_recorded(conn, inbox.account_id, message_id, send_ids)


def _responses(inbox, **params):
    from urllib.parse import urlencode
    r = inbox.api("GET", "/v1/surveys/responses?" + urlencode(params))
    assert r.status_code == 200, r.json
    return r.json


def _list_reply(score, kind="csat"):
    return {"interactive": {"type": "list_reply", "list_reply": {"id": surveys.payload(kind, score),
                                                                   "title": str(score)}}}


# --- parsing -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("survey,kind,text,content,score", [
    # taps: WhatsApp list and button replies, Messenger quick replies, template buttons
    ("csat", "interactive", "5 ★★★★★", _list_reply(5), 5),
    ("csat", "interactive", "Bad", {"interactive": {"type": "button_reply",
                                                   "button_reply": {"id": "survey:csat:1", "title": "Bad"}}}, 1),
    ("nps", "quick_reply", "9", {"quick_reply": {"payload": "survey:nps:9"}}, 9),
    ("ces", "button", "7", {"button": {"payload": "survey:ces:7", "text": "7"}}, 7),
    ("nps", "quick_reply", "0", {"quick_reply": {"payload": "survey:nps:0"}}, 0),
    # a tap on another menu is not a survey answer, whatever its title says
    ("csat", "interactive", "3", {"interactive": {"type": "list_reply", "list_reply": {"id": "menu:3", "title": "3"}}},
     None),
    ("csat", "quick_reply", "2", {"quick_reply": {"payload": "ORDER_2"}}, None),
    # digits in text
    ("csat", "text", "5", {}, 5), ("csat", "text", " 4 ", {}, 4), ("csat", "text", "I'd say 4", {}, 4),
    ("nps", "text", "10/10", {}, 10), ("nps", "text", "8 out of 10", {}, 8), ("nps", "text", "0", {}, 0),
    ("csat", "text", "5 stars!", {}, 5), ("ces", "text", "un 6", {}, 6),
    # out of range
    ("csat", "text", "6", {}, None), ("csat", "text", "0", {}, None), ("nps", "text", "11", {}, None),
    ("ces", "text", "8", {}, None), ("csat", "interactive", "9", _list_reply(9), None),
    # words, several numbers, long messages, nothing
    ("csat", "text", "five", {}, None), ("csat", "text", "great service", {}, None),
    ("csat", "text", "I have 2 problems and 3 questions", {}, None), ("csat", "text", "4.5", {}, None),
    ("csat", "text", "my order number is 4 and it has not arrived yet at all", {}, None),
    ("csat", "text", "123", {}, None), ("csat", "text", "", {}, None), ("csat", "image", None, {}, None),
])
def test_score_parsing_table(survey, kind, text, content, score):
    assert surveys.parse_score(survey, kind, text, content) == score


# --- sending on resolution ------------------------------------------------------------------------------

def test_resolving_sends_csat_as_a_whatsapp_list_and_is_audited(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat")
    out = _resolve(inbox, thread["id"])
    assert out["status"] == "resolved" and out["previous_status"] == "open" and out["changed"]
    assert out["survey"]["state"] == "sent" and out["survey"]["kind"] == "csat"
    _sent(inbox, out["survey"]["message_id"])
    [got] = [m["body"] for m in received(sandbox) if m["body"].get("to") == phone]
    assert got["type"] == "interactive" and got["interactive"]["type"] == "list"
    assert got["interactive"]["body"]["text"] == "How did we do?"
    rows = got["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"survey:csat:{n}" for n in (5, 4, 3, 2, 1)]
    assert inbox.api("GET", f"/v1/messages/{out['survey']['message_id']}").json["purpose"] == "surveys"
    assert inbox.api("GET", f"/v1/threads/{thread['id']}").json["status"] == "resolved"
    audit = inbox.api("GET", "/v1/audit?action=thread.status_changed").json["data"]
    assert audit[0]["target_id"] == thread["id"] and audit[0]["actor"].startswith("api_key:")
    assert audit[0]["detail"]["to"] == "resolved" and audit[0]["detail"]["survey_state"] == "sent"


def test_whatsapp_nps_goes_as_text_because_a_list_holds_ten_rows(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "nps")
    out = _resolve(inbox, thread["id"])
    _sent(inbox, out["survey"]["message_id"])
    [got] = [m["body"] for m in received(sandbox) if m["body"].get("to") == phone]
    assert got["type"] == "text" and "from 0 to 10" in got["text"]["body"]


def test_messenger_survey_is_quick_replies(client, sandbox):
    inbox = make_inbox(client)
    page = _channel(inbox, "messenger", sandbox)
    psid = f"PSID-{secrets.token_hex(4)}"
    _messenger(inbox, page, "thanks!", psid=psid)
    _configure(inbox, "nps")
    out = _resolve(inbox, _thread(inbox, "messenger")["id"])
    _sent(inbox, out["survey"]["message_id"])
    [got] = [m["body"] for m in received(sandbox) if (m["body"].get("recipient") or {}).get("id") == psid]
    replies = got["message"]["quick_replies"]
    assert [q["payload"] for q in replies] == [f"survey:nps:{n}" for n in range(0, 11)]
    assert got["message"]["text"] == "How did we do?"


def test_sms_survey_is_plain_text_in_the_contacts_language(client, sandbox):
    inbox = make_inbox(client)
    sms = _channel(inbox, "twilio", sandbox)
    phone = f"+34600{secrets.randbelow(10**6):06d}"
    _sms(inbox, sms, "gracias", phone=phone)
    thread = _thread(inbox, "twilio")
    with db.connection() as conn:
        conn.execute("UPDATE contacts SET language = 'es' WHERE account_id = %s AND id = %s",
                     (inbox.account_id, thread["contact_id"]))
    _configure(inbox, "ces")
    out = _resolve(inbox, thread["id"])
    _sent(inbox, out["survey"]["message_id"])
    [got] = [m["body"] for m in received(sandbox) if phone in str(m["body"].get("To"))]
    assert got["Body"] == "¿Qué tal te atendimos?\n\nResponde con un número del 1 al 7."


def test_no_survey_after_a_surveys_withdrawal_the_skip_is_recorded(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat")
    r = inbox.api("POST", f"/v1/contacts/{thread['contact_id']}/consents",
                  json={"channel_kind": "whatsapp", "purpose": "surveys", "action": "withdrawn"})
    assert r.status_code == 201, r.json
    out = _resolve(inbox, thread["id"])
    assert out["status"] == "resolved"
    assert out["survey"]["state"] == "skipped" and out["survey"]["skip_reason"] == "opted_out"
    assert out["survey"]["message_id"] is None
    [req] = _requests(inbox, thread["id"])
    assert req["state"] == "skipped" and req["skip_reason"] == "opted_out"
    assert not [m for m in received(sandbox) if m["body"].get("to") == phone]


def test_outside_the_whatsapp_window_the_survey_is_skipped(client):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    old = int(time.time()) - 25 * 3600
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[
        {"from": "34600000901", "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(old), "type": "text",
         "text": {"body": "hola"}}]))
    inbox.drain()
    _configure(inbox, "csat")
    out = _resolve(inbox, _thread(inbox, "whatsapp")["id"])
    assert out["survey"]["state"] == "skipped"
    assert out["survey"]["skip_reason"] == "outside_customer_service_window"


def test_disabled_or_missing_config_sends_nothing(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    assert _resolve(inbox, thread["id"])["survey"] is None
    _resolve(inbox, thread["id"], "open")
    _configure(inbox, "csat", enabled=False)
    assert _resolve(inbox, thread["id"])["survey"] is None
    assert _requests(inbox, thread["id"]) == []


def test_one_survey_per_resolution(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat")
    first = _resolve(inbox, thread["id"])
    again = _resolve(inbox, thread["id"])
    assert again["changed"] is False and again["survey"] is None
    assert len(_requests(inbox, thread["id"])) == 1
    _resolve(inbox, thread["id"], "open")
    second = _resolve(inbox, thread["id"])
    reqs = _requests(inbox, thread["id"])
    assert [r["resolution_seq"] for r in reqs] == [1, 2]
    assert second["survey"]["id"] != first["survey"]["id"]
    for s in (first, second):
        _sent(inbox, s["survey"]["message_id"])
    assert len([m for m in received(sandbox) if m["body"].get("to") == phone]) == 2


def test_status_validation_snooze_and_unknown_thread(client):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "hola", phone="34600000902")
    thread = _thread(inbox, "whatsapp")
    bad = inbox.api("POST", f"/v1/threads/{thread['id']}/status",
                    json={"status": "closed", "snooze_until": "tomorrow", "color": "red"})
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json["errors"]} == {"/status", "/snooze_until", "/color"}
    until = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    out = _resolve(inbox, thread["id"], "snoozed", snooze_until=until)
    assert out["status"] == "snoozed" and out["snoozed_until"] is not None
    assert inbox.api("POST", f"/v1/threads/{secrets.token_hex(16)}/status", json={"status": "open"}).status_code == 404
    other = make_inbox(client)
    assert other.api("POST", f"/v1/threads/{thread['id']}/status", json={"status": "open"}).status_code == 404


# --- configuration --------------------------------------------------------------------------------------

def test_config_validation_lists_every_problem(client):
    inbox = make_inbox(client)
    assert inbox.api("GET", "/v1/surveys/config").json == {"configured": False, "enabled": False}
    r = inbox.api("PUT", "/v1/surveys/config", json={
        "kind": "stars", "questions": {"english": "", "es": "x" * 2000}, "follow_up": [], "expiry_hours": 0,
        "enabled": "yes", "colour": "blue"})
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json["errors"]} == {
        "/kind", "/questions/english", "/questions/es", "/follow_up", "/expiry_hours", "/enabled", "/colour"}
    r = inbox.api("PUT", "/v1/surveys/config", json={})
    assert {e["pointer"] for e in r.json["errors"]} == {"/kind", "/questions"}
    saved = _configure(inbox, "nps", follow_up="What could we do better?", expiry_hours=24)
    assert saved["configured"] and saved["kind"] == "nps" and saved["expiry_hours"] == 24
    assert inbox.api("GET", "/v1/surveys/config").json["follow_up"] == {"en": "What could we do better?"}
    with db.connection() as conn:
        from gateway import accounts
        _, sender = accounts.create_api_key(conn, account_id=inbox.account_id, name="agent",
                                            scopes=["messages:send", "messages:read"], actor="test")
    assert client.put("/v1/surveys/config", json={"kind": "csat", "questions": {"en": "?"}},
                      headers={"Authorization": f"Bearer {sender}"}).status_code == 403


# --- answers, stored through the engine's entry point on real rows ----------------------------------------

def test_answer_is_stored_once_and_keeps_the_thread_resolved(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat")
    out = _resolve(inbox, thread["id"])
    _sent(inbox, out["survey"]["message_id"])
    tap = _record_answer(inbox, thread, kind="interactive", body="5 ★★★★★", content=_list_reply(5))
    assert _handle(inbox, tap["id"]) is True
    # the answer does not reopen the conversation it rated
    assert inbox.api("GET", f"/v1/threads/{thread['id']}").json["status"] == "resolved"
    again = _record_answer(inbox, thread, kind="interactive", body="1 ★", content=_list_reply(1))
    assert _handle(inbox, again["id"]) is True          # a second tap is the survey's, but does not count
    assert inbox.api("GET", f"/v1/threads/{thread['id']}").json["status"] == "resolved"
    typed = _record_answer(inbox, thread, body="3")
    assert _handle(inbox, typed["id"]) is False         # no open survey: conversation for the engine
    [resp] = _responses(inbox)["data"]
    assert resp["score"] == 5 and resp["thread_id"] == thread["id"] and resp["channel_id"] == ch["id"]
    assert resp["message_id"] == str(tap["id"]) and resp["comment"] is None and resp["assignee"] is None
    [req] = _requests(inbox, thread["id"])
    assert req["state"] == "answered" and req["answered_at"] is not None


def test_text_answers_out_of_range_and_words_are_not_consumed(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat")
    _sent(inbox, _resolve(inbox, thread["id"])["survey"]["message_id"])
    for said in ("9", "excellent", "where is my order 1234?"):
        assert _handle(inbox, _record_answer(inbox, thread, body=said)["id"]) is False
    assert _responses(inbox)["data"] == []
    assert _handle(inbox, _record_answer(inbox, thread, body="I'd say 4")["id"]) is True
    assert [r["score"] for r in _responses(inbox)["data"]] == [4]


def test_answers_after_the_expiry_are_ignored(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat", expiry_hours=1)
    out = _resolve(inbox, thread["id"])
    _sent(inbox, out["survey"]["message_id"])
    # An hour passing, as the clock sees it: the request expired a minute ago.
    with db.connection() as conn:
        expires = conn.execute("UPDATE survey_requests SET expires_at = now() - interval '1 minute' "
                               "WHERE account_id = %s RETURNING expires_at", (inbox.account_id,)).fetchone()["expires_at"]
    late = _record_answer(inbox, thread, kind="interactive", content=_list_reply(5), body="5")
    assert _handle(inbox, late["id"]) is False
    assert _responses(inbox)["data"] == []
    on_time = _record_answer(inbox, thread, body="5", occurred_at=expires - timedelta(minutes=1))
    assert _handle(inbox, on_time["id"]) is True


def test_follow_up_comment_is_encrypted_at_rest(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat", follow_up="What could we do better?")
    _sent(inbox, _resolve(inbox, thread["id"])["survey"]["message_id"])
    sends: list = []
    assert _handle(inbox, _record_answer(inbox, thread, kind="interactive", body="2",
                                         content=_list_reply(2))["id"], sends) is True
    [follow_id] = sends
    from gateway import outbound
    outbound.enqueue(inbox.account_id, follow_id)
    _sent(inbox, follow_id)
    assert [m["body"]["text"]["body"] for m in received(sandbox)
            if m["body"].get("to") == phone and m["body"].get("type") == "text"] == ["What could we do better?"]
    comment = "Ana at the Calle Mayor shop was slow, 612 345 678"
    assert _handle(inbox, _record_answer(inbox, thread, body=comment)["id"]) is True
    # the next message after the comment is conversation again
    assert _handle(inbox, _record_answer(inbox, thread, body="one more thing")["id"]) is False
    [resp] = _responses(inbox)["data"]
    assert resp["score"] == 2 and resp["comment"] == comment and resp["commented_at"] is not None
    with db.connection() as conn:
        raw = conn.execute("SELECT comment_enc FROM survey_responses WHERE account_id = %s",
                           (inbox.account_id,)).fetchone()["comment_enc"]
        assert b"Calle Mayor" not in bytes(raw) and b"612" not in bytes(raw)
        dump = conn.execute("SELECT to_jsonb(r)::text AS j FROM survey_responses r WHERE account_id = %s",
                            (inbox.account_id,)).fetchone()["j"]
        assert "Calle Mayor" not in dump


def test_responses_filters_paging_and_tenant_walls(client, sandbox):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp", sandbox)
    page = _channel(inbox, "messenger", sandbox)
    _wa(inbox, wa, "hola", phone="34600000911")
    _wa(inbox, wa, "hola", phone="34600000912")
    _messenger(inbox, page, "hi", psid=f"PSID-{secrets.token_hex(4)}")
    _configure(inbox, "csat")
    threads = inbox.threads()
    by_channel = {}
    for n, t in enumerate(threads, start=1):
        out = _resolve(inbox, t["id"])
        _sent(inbox, out["survey"]["message_id"])
        assert _handle(inbox, _record_answer(inbox, t, body=str(n))["id"]) is True
        by_channel.setdefault(t["channel_id"], []).append(t)
    everything = _responses(inbox)["data"]
    assert len(everything) == 3
    assert [r["answered_at"] for r in everything] == sorted((r["answered_at"] for r in everything), reverse=True)
    assert len(_responses(inbox, channel_id=page["id"])["data"]) == 1
    assert len(_responses(inbox, channel_id=wa["id"])["data"]) == 2
    one = threads[0]
    assert [r["thread_id"] for r in _responses(inbox, thread_id=one["id"])["data"]] == [one["id"]]
    assert _responses(inbox, kind="nps")["data"] == []
    assert len(_responses(inbox, kind="csat")["data"]) == 3
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert _responses(inbox, since=future)["data"] == []
    first = _responses(inbox, limit=2)
    rest = _responses(inbox, limit=2, before=first["next"])
    assert [r["id"] for r in first["data"] + rest["data"]] == [r["id"] for r in everything] and rest["next"] is None
    assert inbox.api("GET", "/v1/surveys/responses?kind=stars").status_code == 422
    assert _responses(make_inbox(client))["data"] == []
    audit = inbox.api("GET", "/v1/audit?action=read:/v1/surveys/responses").json["data"]
    assert audit and audit[0]["target_type"] == "survey_response"


# --- end to end through the automation engine (once the integrator wires it) ------------------------------

def _tap_whatsapp(inbox, ch, phone, score, kind="csat"):
    msg = {"from": phone, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(int(time.time())),
           "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {
               "id": surveys.payload(kind, score), "title": str(score)}}}
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg]))
    inbox.drain()


@needs_engine
def test_e2e_whatsapp_tap_is_counted_once(client, sandbox):
    inbox, ch, thread, phone = _wa_customer(client, sandbox)
    _configure(inbox, "csat")
    _sent(inbox, _resolve(inbox, thread["id"])["survey"]["message_id"])
    _tap_whatsapp(inbox, ch, phone, 5)
    _tap_whatsapp(inbox, ch, phone, 2)
    data = wait_for(lambda: _responses(inbox)["data"], inbox, what="the response")
    assert [r["score"] for r in data] == [5]
    assert inbox.api("GET", f"/v1/threads/{thread['id']}").json["status"] == "resolved"


@needs_engine
def test_e2e_sms_text_answer_and_follow_up(client, sandbox):
    inbox = make_inbox(client)
    sms = _channel(inbox, "twilio", sandbox)
    phone = f"+34600{secrets.randbelow(10**6):06d}"
    _sms(inbox, sms, "thanks", phone=phone)
    _configure(inbox, "csat", follow_up="Anything we could improve?")
    _sent(inbox, _resolve(inbox, _thread(inbox, "twilio")["id"])["survey"]["message_id"])
    _sms(inbox, sms, "I'd say 4", phone=phone)
    wait_for(lambda: any("Anything we could improve?" in str(m["body"].get("Body")) for m in received(sandbox)),
             inbox, what="the follow-up question")
    _sms(inbox, sms, "faster answers please", phone=phone)
    data = wait_for(lambda: [r for r in _responses(inbox)["data"] if r["comment"]], inbox, what="the comment")
    assert data[0]["score"] == 4 and data[0]["comment"] == "faster answers please"

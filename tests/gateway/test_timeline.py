"""The 360° contact timeline: a customer who wrote on WhatsApp and SMS (and on Messenger as a contact merged into
them later), with an agent's reply and its statuses, a note, a consent grant, a hand-off and a resolution, a survey
answer and a campaign message — every item present once, in time order, pages joining exactly in both orders;
tenant walls. Customers arrive through the real webhooks and inbound worker; sends go through the sandbox."""
from __future__ import annotations

import secrets
from datetime import datetime

from gateway import consent, db, notes, thread_events
from tests.gateway.test_campaigns import _act, _campaign, _consent, _run, _settled
from tests.gateway.test_campaigns import _setup as _campaign_setup
from tests.gateway.test_keywords import _channel, _messenger, _sms, _wa
from tests.gateway.test_send_end_to_end import gateway_url, sandbox, send, wait_for  # noqa: F401  (fixtures)
from tests.gateway.test_surveys import _configure, _handle, _list_reply, _record_answer, _resolve, _sent
from tests.webhooks.conftest import make_inbox


def _page(inbox, contact_id, status=200, **params):
    r = inbox.api("GET", f"/v1/contacts/{contact_id}/timeline", query_string=params)
    assert r.status_code == status, r.json
    return r.json


def _walk(inbox, contact_id, limit, **params) -> list[dict]:
    """Every page, following ``next``."""
    out, cursor, pages = [], None, 0
    while True:
        doc = _page(inbox, contact_id, limit=limit, **params, **({"after": cursor} if cursor else {}))
        assert len(doc["data"]) <= limit
        out += doc["data"]
        pages += 1
        cursor = doc["next"]
        if not cursor:
            return out
        assert pages < 500


def _key(item) -> tuple:
    return item["kind"], item["id"], item.get("via_merged_contact")


def test_the_timeline_holds_everything_across_channels_in_order(client, sandbox):
    inbox, wa = _campaign_setup(client, sandbox)        # WhatsApp with its business account and a template
    sms = _channel(inbox, "twilio", sandbox)
    phone = f"34600{secrets.randbelow(10**6):06d}"
    _wa(inbox, wa, "hola, ¿tenéis la talla 38?", phone=phone)
    _sms(inbox, sms, "os escribo también por SMS", phone="+" + phone)
    threads = {t["channel_kind"]: t for t in inbox.threads()}
    contact = threads["whatsapp"]["contact_id"]
    assert threads["twilio"]["contact_id"] == contact          # one customer, two channels
    r = inbox.api("PATCH", f"/v1/contacts/{contact}", json={"attributes": {"first_name": "Ana", "plan": "Plus"},
                                                             "language": "es"})
    assert r.status_code == 200, r.json

    # An agent answers on WhatsApp; the provider's statuses come back.
    reply = send(inbox, channel_id=wa["id"], contact_id=contact, type="text", text={"body": "Sí, te la reservo"})
    # A note on the SMS thread, a marketing grant, a hand-off and a resolution (which sends the survey).
    note = inbox.api("POST", f"/v1/threads/{threads['twilio']['id']}/notes",
                     json={"body": "Quiere la talla 38 en azul", "author": "agent-3"}).json
    _consent(inbox, contact, "marketing", "granted")
    assert inbox.api("POST", f"/v1/threads/{threads['whatsapp']['id']}/handler",
                     json={"handler": "human"}).status_code == 200
    _configure(inbox, "csat")
    survey = _resolve(inbox, threads["whatsapp"]["id"])["survey"]
    _sent(inbox, survey["message_id"])
    tap = _record_answer(inbox, threads["whatsapp"], kind="interactive", body="5 ★★★★★", content=_list_reply(5))
    assert _handle(inbox, tap["id"]) is True
    # A campaign reaches the customer.
    campaign = _campaign(inbox, wa, [contact])
    _act(inbox, campaign, "start")
    _run(inbox, _settled(inbox, campaign), what="the campaign to complete")
    # The same person, known on Messenger as another contact, is merged into this one.
    page = _channel(inbox, "messenger", sandbox)
    _messenger(inbox, page, "hola desde Messenger", psid=f"PSID-{secrets.token_hex(4)}")
    other = [t for t in inbox.threads() if t["channel_kind"] == "messenger"][0]["contact_id"]
    assert inbox.api("POST", f"/v1/contacts/{contact}/merge", json={"contact_id": other}).status_code == 201

    all_threads = [t for t in inbox.threads(contact_id=contact)]
    assert {t["channel_kind"] for t in all_threads} == {"whatsapp", "twilio", "messenger"}

    def outbound_read():
        found = [m for t in all_threads for m in inbox.messages(t["id"]) if m["direction"] == "outbound"]
        return len(found) == 3 and all(m["status"] == "read" for m in found) and found
    wait_for(outbound_read, inbox, what="every outbound message read")

    # What the timeline must hold, read from the other APIs and the tables.
    msgs = [m for t in all_threads for m in inbox.messages(t["id"])]
    expected = {("message", m["id"]) for m in msgs}
    with db.connection() as conn:
        statuses = conn.execute("SELECT e.id FROM message_events e JOIN messages m ON m.account_id = e.account_id "
                                "AND m.id = e.message_id WHERE m.account_id = %s", (inbox.account_id,)).fetchall()
        events = conn.execute("SELECT id, kind FROM thread_events WHERE account_id = %s",
                              (inbox.account_id,)).fetchall()
        consents = conn.execute("SELECT id FROM consent_events WHERE account_id = %s", (inbox.account_id,)).fetchall()
        answers = conn.execute("SELECT id FROM survey_responses WHERE account_id = %s", (inbox.account_id,)).fetchall()
    expected |= {("status", str(r["id"])) for r in statuses}
    expected |= {("thread_event", str(r["id"])) for r in events}
    expected |= {("consent", str(r["id"])) for r in consents}
    expected |= {("survey_answer", str(r["id"])) for r in answers}
    expected |= {("note", note["id"]), ("campaign", campaign["id"])}
    assert {"status", "handler"} <= {r["kind"] for r in events} and len(answers) == 1 and len(consents) == 1

    whole = _page(inbox, contact, limit=200)
    assert whole["next"] is None and whole["contact_id"] == contact and whole["order"] == "asc"
    items = whole["data"]
    assert len(items) == len(expected) and {(i["kind"], i["id"]) for i in items} == expected
    times = [datetime.fromisoformat(i["at"]) for i in items]
    assert times == sorted(times)

    by_text = {i["message"]["text"]: i for i in items if i["kind"] == "message"}
    assert by_text["hola, ¿tenéis la talla 38?"]["channel_kind"] == "whatsapp"
    assert by_text["hola, ¿tenéis la talla 38?"]["message"]["direction"] == "inbound"
    assert by_text["os escribo también por SMS"]["channel_kind"] == "twilio"
    assert by_text["os escribo también por SMS"]["thread_id"] == threads["twilio"]["id"]
    assert by_text["hola desde Messenger"]["via_merged_contact"] == other
    assert by_text["Sí, te la reservo"]["id"] == reply["id"]
    assert {s["status"]["status"] for s in items if s["kind"] == "status"
            and s["status"]["message_id"] == reply["id"]} >= {"delivered", "read"}
    [n] = [i for i in items if i["kind"] == "note"]
    assert n["note"] == {"author": "agent-3", "actor": note["actor"], "body": "Quiere la talla 38 en azul"}
    assert n["thread_id"] == threads["twilio"]["id"] and n["channel_kind"] == "twilio"
    [c] = [i for i in items if i["kind"] == "consent"]
    assert c["consent"]["action"] == "granted" and c["consent"]["purpose"] == "marketing" and c["thread_id"] is None
    [s] = [i for i in items if i["kind"] == "survey_answer"]
    assert s["survey_answer"]["score"] == 5 and s["survey_answer"]["kind"] == "csat"
    assert s["survey_answer"]["message_id"] == str(tap["id"])
    [k] = [i for i in items if i["kind"] == "campaign"]
    assert k["campaign"]["state"] == "queued" and k["campaign"]["name"] == campaign["name"]
    [sent_by_campaign] = [i for i in items if i["kind"] == "message" and i["id"] == k["campaign"]["message_id"]]
    assert sent_by_campaign["message"]["kind"] == "template" and sent_by_campaign["channel_id"] == wa["id"]
    kinds = [i["thread_event"]["kind"] for i in items if i["kind"] == "thread_event"]
    assert "handler" in kinds and "status" in kinds
    # The resolution comes after the hand-off, the survey answer after the resolution.
    at = {_key(i): n for n, i in enumerate(items)}
    resolved = next(n for n, i in enumerate(items) if i["kind"] == "thread_event"
                    and i["thread_event"]["detail"].get("to") == "resolved")
    handed = next(n for n, i in enumerate(items) if i["kind"] == "thread_event"
                  and i["thread_event"]["kind"] == "handler")
    assert handed < resolved < at[("survey_answer", s["id"], None)]

    # Pages join exactly, in both orders, whatever their size.
    for limit in (1, 4, 7):
        assert [_key(i) for i in _walk(inbox, contact, limit)] == [_key(i) for i in items]
    newest_first = _walk(inbox, contact, 5, order="desc")
    assert [_key(i) for i in newest_first] == [_key(i) for i in reversed(items)]
    assert _page(inbox, contact, limit=3, order="desc")["data"] == list(reversed(items))[:3]
    # Some kinds only.
    only = _walk(inbox, contact, 2, kinds="note,consent,campaign")
    assert [i["kind"] for i in only] == [i["kind"] for i in items if i["kind"] in ("note", "consent", "campaign")]

    # Asking through the merged contact answers for the survivor.
    assert _page(inbox, other, limit=200)["data"] == items and _page(inbox, other, limit=1)["contact_id"] == contact
    # Bad input, tenant walls, the audit row.
    assert _page(inbox, contact, status=400, after="not-a-cursor")["type"].endswith("/bad-cursor")
    assert _page(inbox, contact, status=400, order="sideways")["type"].endswith("/bad-filter")
    assert _page(inbox, contact, status=400, kinds="message,gossip")["type"].endswith("/bad-filter")
    assert _page(inbox, contact, status=400, limit=0)["type"].endswith("/bad-limit")
    stranger = make_inbox(client)
    assert _page(stranger, contact, status=404)["status"] == 404
    assert _page(inbox, "0190a3c4-0000-7000-8000-000000000000", status=404)
    audit = inbox.api("GET", "/v1/audit?action=read:/v1/contacts/<contact_id>/timeline").json["data"]
    assert {(a["target_type"], a["target_id"]) for a in audit} == {("contact", contact), ("contact", other)}


def test_pages_join_exactly_when_items_share_one_instant(client):
    """Items of several kinds at the same microsecond sort by kind, then id; cursors keep every one of them."""
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "hola")
    thread = inbox.threads()[0]
    contact = thread["contact_id"]
    with db.connection() as conn:
        at = conn.execute("SELECT occurred_at FROM messages WHERE account_id = %s", (inbox.account_id,)
                          ).fetchone()["occurred_at"]
        for n in range(3):
            thread_events.record(conn, account_id=inbox.account_id, thread_id=thread["id"], kind="assigned",
                                 actor="test", detail={"n": n}, at=at)
            notes.add(conn, account_id=inbox.account_id, thread_id=thread["id"], body=f"nota {n}", actor="test")
        conn.execute("UPDATE thread_notes SET created_at = %s WHERE account_id = %s", (at, inbox.account_id))
        consent.record(conn, account_id=inbox.account_id, contact_id=contact, channel_kind="all",
                       purpose="marketing", action="granted", source="agent", occurred_at=at, actor="test",
                       proof={"text": "Acepto", "text_version": "v1"})
    whole = _page(inbox, contact, limit=200)["data"]
    assert len(whole) == 8 and len({i["at"] for i in whole}) == 1
    assert [i["kind"] for i in whole] == ["message"] + ["note"] * 3 + ["thread_event"] * 3 + ["consent"]
    assert [i["note"]["body"] for i in whole if i["kind"] == "note"] == ["nota 0", "nota 1", "nota 2"]
    for limit in (1, 2, 3):
        assert [_key(i) for i in _walk(inbox, contact, limit)] == [_key(i) for i in whole]
        assert [_key(i) for i in _walk(inbox, contact, limit, order="desc")] == [_key(i) for i in reversed(whole)]


def test_a_contact_without_threads_and_erasure(client):
    inbox = make_inbox(client)
    r = inbox.api("POST", "/v1/contacts", json={"identities": [{"kind": "phone", "address": "+34612999001"}]})
    contact = r.json["id"]
    assert _page(inbox, contact)["data"] == [] and _page(inbox, contact)["next"] is None
    _consent(inbox, contact, "marketing", "granted")
    [item] = _page(inbox, contact)["data"]
    assert item["kind"] == "consent" and item["channel_id"] is None
    assert inbox.api("DELETE", f"/v1/contacts/{contact}").status_code == 204
    assert _page(inbox, contact, status=404)

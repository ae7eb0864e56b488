"""The thread lifecycle (open → pending → snoozed → resolved, reopened by the customer, snoozes waking) and the
inbox list (filters, sorts, unread counts, pagination), through the API and the real inbound pipeline."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from gateway import db, sweeper
from tests.gateway.test_keywords import _channel, _sms, _wa
from tests.webhooks.conftest import make_inbox


def _status(inbox, thread_id, status, **extra):
    return inbox.api("POST", f"/v1/threads/{thread_id}/status", json={"status": status, **extra})


def _thread(inbox, thread_id):
    return inbox.api("GET", f"/v1/threads/{thread_id}").json


def _events(inbox, thread_id):
    with db.connection() as conn:
        return conn.execute("SELECT kind, actor, detail FROM thread_events WHERE account_id = %s AND thread_id = %s "
                            "ORDER BY created_at, id", (inbox.account_id, thread_id)).fetchall()


def _later(hours=2):
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


@pytest.fixture
def wa_thread(client):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    phone = f"34600{secrets.randbelow(10**6):06d}"
    _wa(inbox, ch, "hola", phone=phone)
    [thread] = inbox.threads()
    return inbox, ch, phone, thread


ALL = ("open", "pending", "snoozed", "resolved")
ALLOWED = {"open": {"pending", "snoozed", "resolved"}, "pending": {"open", "snoozed", "resolved"},
           "snoozed": {"open", "pending", "resolved"}, "resolved": {"open"}}


@pytest.mark.parametrize("start", ALL)
def test_every_transition_is_allowed_or_refused_naming_the_allowed_ones(wa_thread, start):
    inbox, _, _, thread = wa_thread
    path = {"open": [], "pending": ["pending"], "snoozed": ["snoozed"], "resolved": ["resolved"]}[start]
    for step in path:
        assert _status(inbox, thread["id"], step, **({"snooze_until": _later()} if step == "snoozed" else {})
                       ).status_code == 200
    for target in ALL:
        if target == start:
            continue
        with db.connection() as conn:   # back to the start each time, straight in the table
            conn.execute("UPDATE threads SET status = %s, snoozed_until = %s WHERE account_id = %s AND id = %s",
                         (start, datetime.now(timezone.utc) + timedelta(hours=1) if start == "snoozed" else None,
                          inbox.account_id, thread["id"]))
        r = _status(inbox, thread["id"], target, **({"snooze_until": _later()} if target == "snoozed" else {}))
        if target in ALLOWED[start]:
            assert r.status_code == 200, (start, target, r.json)
            assert r.json["status"] == target
        else:
            assert r.status_code == 409, (start, target)
            assert r.json["allowed"] == sorted(ALLOWED[start], key=ALL.index) and r.json["current_status"] == start
            assert f"a {start} thread can go to" in r.json["detail"]


def test_changes_record_who_made_them_and_snooze_needs_a_time(wa_thread):
    inbox, _, _, thread = wa_thread
    assert _status(inbox, thread["id"], "snoozed").status_code == 422
    assert _status(inbox, thread["id"], "pending", agent="crm-agent-7").status_code == 200
    assert _status(inbox, thread["id"], "pending").json["status"] == "pending"       # the same again: kept
    assert _status(inbox, thread["id"], "resolved").status_code == 200
    events = [(e["kind"], e["actor"], e["detail"]["from"], e["detail"]["to"]) for e in _events(inbox, thread["id"])
              if e["kind"] == "status"]
    assert events[0] == ("status", "agent:crm-agent-7", "open", "pending")
    assert events[1][1].startswith("api_key:") and events[1][2:] == ("pending", "resolved")
    assert len(events) == 2


def test_the_customer_reopens_a_resolved_or_snoozed_thread_and_answers_a_pending_one(wa_thread):
    inbox, ch, phone, thread = wa_thread
    for status in ("resolved", "snoozed", "pending"):
        extra = {"snooze_until": _later()} if status == "snoozed" else {}
        if _thread(inbox, thread["id"])["status"] != "open":
            assert _status(inbox, thread["id"], "open").status_code == 200
        assert _status(inbox, thread["id"], status, **extra).status_code == 200
        _wa(inbox, ch, f"otra pregunta tras {status}", phone=phone)
        after = _thread(inbox, thread["id"])
        assert after["status"] == "open", status
    customer = [(e["detail"]["from"], e["detail"]["to"]) for e in _events(inbox, thread["id"]) if e["actor"] == "customer"]
    assert customer == [("resolved", "open"), ("snoozed", "open"), ("pending", "open")]


def test_a_snooze_ends_by_itself(wa_thread):
    inbox, _, _, thread = wa_thread
    assert _status(inbox, thread["id"], "snoozed", snooze_until=_later()).status_code == 200
    sweeper.sweep_once(grace_s=0)
    assert _thread(inbox, thread["id"])["status"] == "snoozed"
    with db.connection() as conn:
        conn.execute("UPDATE threads SET snoozed_until = now() - interval '1 second' WHERE account_id = %s AND id = %s",
                     (inbox.account_id, thread["id"]))
    assert sweeper.sweep_once(grace_s=0)["woken_threads"] >= 1
    assert _thread(inbox, thread["id"])["status"] == "open"
    assert _events(inbox, thread["id"])[-1]["actor"] == "gateway"


# --- the inbox list ------------------------------------------------------------------------------------------

def _list(inbox, **params):
    from urllib.parse import urlencode
    r = inbox.api("GET", "/v1/threads?" + urlencode(params))
    assert r.status_code == 200, r.json
    return r.json


def test_inbox_filters_unread_window_and_the_last_message(client):
    inbox = make_inbox(client)
    wa, sms = _channel(inbox, "whatsapp"), _channel(inbox, "twilio")
    _wa(inbox, wa, "primera", phone="34600111001")
    _wa(inbox, wa, "segunda, más larga " + "x" * 300, phone="34600111001")
    _sms(inbox, sms, "por sms", phone="+34600111002")
    _wa(inbox, wa, "hola", phone="34600111003")
    threads = {t["last_message"]["text"][:7]: t for t in _list(inbox)["data"]}
    long_one = threads["segunda"]
    assert long_one["unread_count"] == 2 and len(long_one["last_message"]["text"]) == 160
    assert long_one["last_message"]["direction"] == "inbound" and long_one["window"]["open"] is True
    assert long_one["window"]["closes_at"] is not None
    # Read: nothing unread there any more.
    r = inbox.api("POST", f"/v1/threads/{long_one['id']}/read")
    assert r.status_code == 200 and r.json["unread_count"] == 0
    assert {t["id"] for t in _list(inbox, unread="true")["data"]} == {threads["por sms"]["id"], threads["hola"]["id"]}
    assert [t["id"] for t in _list(inbox, unread="false")["data"]] == [long_one["id"]]
    # Status (several), channel, window.
    assert _status(inbox, threads["hola"]["id"], "pending").status_code == 200
    assert [t["id"] for t in _list(inbox, status="pending")["data"]] == [threads["hola"]["id"]]
    assert len(_list(inbox, status="pending,open")["data"]) == 3
    assert [t["id"] for t in _list(inbox, channel_id=sms["id"])["data"]] == [threads["por sms"]["id"]]
    with db.connection() as conn:
        conn.execute("UPDATE threads SET last_inbound_at = now() - interval '2 days' WHERE account_id = %s AND id = %s",
                     (inbox.account_id, threads["por sms"]["id"]))
    assert [t["id"] for t in _list(inbox, window="closed")["data"]] == [threads["por sms"]["id"]]
    assert len(_list(inbox, window="open")["data"]) == 2
    for bad in ({"status": "closed"}, {"sort": "alphabetical"}, {"window": "ajar"}, {"unread": "maybe"}):
        r = inbox.api("GET", "/v1/threads?" + "&".join(f"{k}={v}" for k, v in bad.items()))
        assert r.status_code == 400 and r.json["type"].endswith("/bad-filter")


def test_inbox_waiting_sort_and_pages_that_join_exactly(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    for i in range(7):
        _wa(inbox, wa, f"cliente {i}", phone=f"3460022200{i}")
    ids = {t["last_message"]["text"]: t["id"] for t in _list(inbox)["data"]}
    base = datetime.now(timezone.utc) - timedelta(hours=1)
    with db.connection() as conn:
        for i in range(7):   # customer i wrote i minutes after the base; customer 3 got an answer since
            conn.execute("UPDATE threads SET last_inbound_at = %s, last_activity_at = %s, last_outbound_at = %s "
                         "WHERE account_id = %s AND id = %s",
                         (base + timedelta(minutes=i), base + timedelta(minutes=i),
                          base + timedelta(minutes=30) if i == 3 else None, inbox.account_id, ids[f"cliente {i}"]))
    waiting = [t["last_message"]["text"] for t in _list(inbox, sort="waiting")["data"]]
    assert waiting == [f"cliente {i}" for i in (0, 1, 2, 4, 5, 6)]      # longest waiting first, 3 was answered
    for sort in ("activity", "waiting"):
        seen, before = [], None
        while True:
            page = _list(inbox, sort=sort, limit=2, **({"before": before} if before else {}))
            seen += [t["id"] for t in page["data"]]
            before = page["next"]
            if not before:
                break
        assert len(seen) == len(set(seen)) == (7 if sort == "activity" else 6)
    activity = [t["last_message"]["text"] for t in _list(inbox)["data"]]
    assert activity == [f"cliente {i}" for i in (6, 5, 4, 3, 2, 1, 0)]


def test_inbox_tenant_wall(client):
    a, b = make_inbox(client), make_inbox(client)
    _wa(a, _channel(a, "whatsapp"), "hola", phone="34600333001")
    assert _list(b)["data"] == []
    [thread] = _list(a)["data"]
    assert b.api("POST", f"/v1/threads/{thread['id']}/read").status_code == 404
    assert _status(b, thread["id"], "resolved").status_code == 404


def test_inbox_by_team_assignee_and_tag(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    for i in range(3):
        _wa(inbox, wa, f"cliente {i}", phone=f"3460044400{i}")
    ids = {t["last_message"]["text"]: t["id"] for t in _list(inbox)["data"]}
    team = inbox.api("POST", "/v1/teams", json={"name": "ventas"}).json
    agent = inbox.api("POST", "/v1/agents", json={"external_id": "crm-1", "name": "Lucía", "availability": "available",
                                                  "capacity": 5}).json
    assert inbox.api("PUT", f"/v1/teams/{team['id']}/members/{agent['id']}").status_code in (200, 201)
    r = inbox.api("POST", f"/v1/threads/{ids['cliente 0']}/assign", json={"team_id": team["id"],
                                                                         "agent_id": agent["id"]})
    assert r.status_code == 200, r.json
    with db.connection() as conn:   # a second thread waits in the team's queue, nobody holding it
        conn.execute("UPDATE agents SET availability = 'away' WHERE account_id = %s", (inbox.account_id,))
    assert inbox.api("POST", f"/v1/threads/{ids['cliente 1']}/assign", json={"team_id": team["id"]}).status_code == 200
    assert [t["id"] for t in _list(inbox, team_id=team["id"], assignee=agent["id"])["data"]] == [ids["cliente 0"]]
    assert [t["id"] for t in _list(inbox, team_id=team["id"], assignee="none")["data"]] == [ids["cliente 1"]]
    assert len(_list(inbox, assignee="none")["data"]) == 2
    tagged = inbox.api("POST", f"/v1/threads/{ids['cliente 2']}/tags", json={"add": ["urgente"]})
    assert tagged.status_code == 200, tagged.json
    [only] = _list(inbox, tag="urgente")["data"]
    assert only["id"] == ids["cliente 2"] and only["tags"] == ["urgente"]
    assert _thread(inbox, ids["cliente 2"])["tags"] == ["urgente"]
    assert _list(inbox, team_id=team["id"], assignee=agent["id"])["data"][0]["assignee"]["external_id"] == "crm-1"

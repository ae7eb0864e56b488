"""Agents, teams, assignment and routing end to end: the admin API sets up teams, agents and routing rules;
customers write through signed webhooks and the real inbound worker; routing picks the team and the agent
(rule conditions, round robin, least busy, capacity, availability, sticky across channels), unassigned
threads wait in the team's queue oldest first and go to agents as they become free; assignment over the API
refuses what it cannot do with 404/409 problems; tenants stay walled."""
from __future__ import annotations

import secrets
import time

import pytest

from gateway import db
from tests.gateway.test_flows import SUPPORT_FLOW, _button_ids, _wa_tap, _wa_text, _wait_count
from tests.gateway.test_keywords import TWILIO_SID, _channel, _messenger
from tests.gateway.test_send_end_to_end import gateway_url, sandbox  # noqa: F401  (fixtures)
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text, wa_body


# --- helpers ---------------------------------------------------------------------------------------------

def _phone() -> str:
    return f"34600{secrets.randbelow(10**6):06d}"


def _wa(inbox, ch, phone, body="hola", ago: float = 2):
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(phone, body, ts=int(time.time() - ago))]))
    inbox.drain()


def _sms(inbox, ch, phone, body="hola"):
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": TWILIO_SID, "From": f"+{phone}",
              "To": ch["external_id"], "Body": body, "NumMedia": "0", "SmsStatus": "received",
              "ApiVersion": "2010-04-01"}
    assert inbox.post_twilio(params).status_code == 200
    inbox.drain()


def _ok(r, status=200):
    assert r.status_code == status, r.json
    return r.json


def _team(inbox, name=None, strategy="round_robin"):
    return _ok(inbox.api("POST", "/v1/teams", json={"name": name or f"team-{secrets.token_hex(3)}",
                                                     "strategy": strategy}), 201)


def _agent(inbox, team=None, availability="available", capacity=5, languages=(), external_id=None):
    agent = _ok(inbox.api("POST", "/v1/agents", json={
        "external_id": external_id or f"crm-{secrets.token_hex(4)}", "name": "Agent", "availability": availability,
        "capacity": capacity, "languages": list(languages)}), 201)
    if team is not None:
        _ok(inbox.api("PUT", f"/v1/teams/{team['id']}/members/{agent['id']}"), 201)
    return agent


def _rule(inbox, team, conditions=None, priority=100, **extra):
    return _ok(inbox.api("POST", "/v1/routing-rules", json={
        "name": f"rule-{secrets.token_hex(3)}", "priority": priority, "team_id": team["id"],
        "conditions": conditions or {}, **extra}), 201)


def _thread_of(inbox, address, kind="whatsapp"):
    """The thread view of the customer's (a phone number without +, or a Messenger PSID) thread on that kind
    of channel."""
    from gateway import contacts
    identity, value = ("psid", address) if kind == "messenger" else ("phone", f"+{address}")
    with db.connection() as c:
        contact_id = contacts.contact_id_for(c, account_id=inbox.account_id, kind=identity, address=value)
        row = c.execute(
            "SELECT t.id FROM threads t JOIN channels ch ON ch.account_id = t.account_id AND ch.id = t.channel_id "
            "WHERE t.account_id = %s AND t.contact_id = %s AND ch.kind = %s", (inbox.account_id, contact_id, kind)
        ).fetchone()
    assert row is not None, f"no {kind} thread for that customer"
    return _ok(inbox.api("GET", f"/v1/threads/{row['id']}"))


def _agent_of(thread):
    return thread["assignee"]["id"] if thread["assignee"] else None


def _assignments(inbox, thread_id):
    with db.connection() as c:
        return c.execute("SELECT kind, actor, detail FROM thread_events WHERE account_id = %s AND thread_id = %s "
                         "AND kind IN ('assigned', 'unassigned') ORDER BY created_at, id",
                         (inbox.account_id, thread_id)).fetchall()


def _assign(inbox, thread_id, **body):
    return inbox.api("POST", f"/v1/threads/{thread_id}/assign", json=body)


# --- admin API -------------------------------------------------------------------------------------------

def test_teams_agents_and_members_over_the_api(client):
    inbox = make_inbox(client)
    team = _team(inbox, "support", "least_busy")
    assert team["name"] == "support" and team["strategy"] == "least_busy" and team["members"] == []
    r = inbox.api("POST", "/v1/teams", json={"name": "support"})
    assert r.status_code == 409 and r.json["type"].endswith("/team-name-taken")
    r = inbox.api("POST", "/v1/teams", json={"name": "", "strategy": "random", "extra": 1})
    assert r.status_code == 422 and {e["pointer"] for e in r.json["errors"]} == {"/name", "/strategy", "/extra"}

    ana = _agent(inbox, external_id="crm-ana", languages=["es", "pt_BR"], capacity=3)
    assert (ana["external_id"], ana["availability"], ana["languages"], ana["capacity"], ana["open_threads"],
            ana["team_ids"]) == ("crm-ana", "available", ["es", "pt_BR"], 3, 0, [])
    r = inbox.api("POST", "/v1/agents", json={"external_id": "crm-ana", "name": "Ana 2"})
    assert r.status_code == 409 and r.json["type"].endswith("/agent-exists")
    r = inbox.api("POST", "/v1/agents", json={"external_id": "x", "name": "X", "capacity": -1,
                                               "availability": "busy", "languages": ["english!"]})
    assert r.status_code == 422 and {e["pointer"] for e in r.json["errors"]} == {
        "/capacity", "/availability", "/languages/0"}

    assert _ok(inbox.api("PUT", f"/v1/teams/{team['id']}/members/{ana['id']}"), 201)["added"] is True
    assert _ok(inbox.api("PUT", f"/v1/teams/{team['id']}/members/{ana['id']}"))["added"] is False   # idempotent
    got = _ok(inbox.api("GET", f"/v1/teams/{team['id']}"))
    assert [m["external_id"] for m in got["members"]] == ["crm-ana"] and got["queued"] == 0
    assert _ok(inbox.api("GET", f"/v1/agents/{ana['id']}"))["team_ids"] == [team["id"]]
    assert [a["id"] for a in _ok(inbox.api("GET", "/v1/agents?external_id=crm-ana"))["data"]] == [ana["id"]]
    assert _ok(inbox.api("GET", "/v1/agents?availability=offline"))["data"] == []

    changed = _ok(inbox.api("PATCH", f"/v1/agents/{ana['id']}", json={"availability": "away", "capacity": 8}))
    assert (changed["availability"], changed["capacity"]) == ("away", 8)
    assert inbox.api("PATCH", f"/v1/agents/{ana['id']}", json={}).status_code == 422
    renamed = _ok(inbox.api("PATCH", f"/v1/teams/{team['id']}", json={"name": "care", "strategy": "round_robin"}))
    assert (renamed["name"], renamed["strategy"]) == ("care", "round_robin")

    # A team or agent a routing rule names cannot be deleted from under it.
    rule = _rule(inbox, team, agent_id=ana["id"])
    for path in (f"/v1/teams/{team['id']}", f"/v1/agents/{ana['id']}"):
        r = inbox.api("DELETE", path)
        assert r.status_code == 409 and r.json["routing_rule_ids"] == [rule["id"]]
    assert inbox.api("DELETE", f"/v1/routing-rules/{rule['id']}").status_code == 204
    assert inbox.api("DELETE", f"/v1/teams/{team['id']}/members/{ana['id']}").status_code == 204
    assert inbox.api("DELETE", f"/v1/teams/{team['id']}/members/{ana['id']}").status_code == 404
    assert inbox.api("DELETE", f"/v1/agents/{ana['id']}").status_code == 204
    assert inbox.api("DELETE", f"/v1/teams/{team['id']}").status_code == 204
    assert inbox.api("GET", f"/v1/teams/{team['id']}").status_code == 404

    # Managing them is for admin keys; an agent-facing key assigns and reads queues.
    key = _ok(inbox.api("POST", "/v1/api-keys", json={"name": "crm", "scopes": ["messages:send", "messages:read"]}),
              201)["key"]
    r = inbox.api("POST", "/v1/teams", json={"name": "x"}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and r.json["type"].endswith("/missing-scope")


def test_a_rule_with_problems_is_refused_listing_each_one(client):
    inbox, other = make_inbox(client), make_inbox(client)
    foreign = _team(other)
    team = _team(inbox)
    outsider = _agent(inbox)    # not in the team
    r = inbox.api("POST", "/v1/routing-rules", json={
        "name": "", "priority": "high", "enabled": "yes", "colour": "red", "team_id": foreign["id"],
        "agent_id": "nope", "conditions": {
            "channel_id": "00000000-0000-0000-0000-000000000000", "channel_kind": "fax", "language": "english",
            "tags": ["vip", ""], "attributes": {"9lives": 1, "tier": {"a": 1}}, "keyword": {"match": "fuzzy"},
            "weather": "sunny"}})
    assert r.status_code == 422 and r.json["type"].endswith("/invalid-routing-rule")
    assert {e["pointer"] for e in r.json["errors"]} == {
        "/name", "/priority", "/enabled", "/colour", "/team_id", "/agent_id", "/conditions/channel_id",
        "/conditions/channel_kind", "/conditions/language", "/conditions/tags/1", "/conditions/attributes/9lives",
        "/conditions/attributes/tier", "/conditions/keyword/match", "/conditions/weather"}
    r = inbox.api("POST", "/v1/routing-rules", json={"name": "r", "team_id": team["id"], "agent_id": outsider["id"],
                                                     "conditions": {"keyword": {"match": "regex", "pattern": "("}}})
    assert {e["pointer"] for e in r.json["errors"]} == {"/agent_id", "/conditions/keyword/pattern"}
    rule = _rule(inbox, team, {"channel_kind": "twilio"}, priority=5)
    replaced = _ok(inbox.api("PUT", f"/v1/routing-rules/{rule['id']}", json={
        "name": "sms", "priority": 1, "enabled": False, "team_id": team["id"], "conditions": {}}))
    assert (replaced["name"], replaced["priority"], replaced["enabled"], replaced["conditions"]) == (
        "sms", 1, False, {})
    assert [x["id"] for x in _ok(inbox.api("GET", "/v1/routing-rules"))["data"]] == [rule["id"]]
    assert other.api("GET", f"/v1/routing-rules/{rule['id']}").status_code == 404
    assert other.api("PUT", f"/v1/routing-rules/{rule['id']}", json={"name": "x", "team_id": foreign["id"]}
                     ).status_code == 404


# --- rule conditions ---------------------------------------------------------------------------------------

def _contact(inbox, phone, **fields):
    return _ok(inbox.api("POST", "/v1/contacts", json={
        "identities": [{"kind": "phone", "address": f"+{phone}"}], **fields}), 201)


@pytest.mark.parametrize("kind", ["channel_id", "channel_kind", "language", "tags", "attributes", "keyword"])
def test_each_rule_condition_routes_only_the_threads_it_matches(client, kind):
    inbox = make_inbox(client)
    wa, wa2, sms = _channel(inbox, "whatsapp"), _channel(inbox, "whatsapp"), _channel(inbox, "twilio")
    team = _team(inbox)
    conditions = {"channel_id": {"channel_id": wa2["id"]},
                  "channel_kind": {"channel_kind": "twilio"},
                  "language": {"language": "pt"},
                  "tags": {"tags": ["vip", "gold"]},
                  "attributes": {"attributes": {"tier": "Premium", "beta": True}},
                  "keyword": {"keyword": {"match": "contains", "keywords": ["refund", "reembolso"]}}}[kind]
    _rule(inbox, team, conditions)
    hit, miss = _phone(), _phone()
    channel, hit_body, miss_body = wa, "hola", "hola"
    if kind == "channel_id":
        channel = wa2
    elif kind == "channel_kind":
        channel = sms
    elif kind == "language":
        _contact(inbox, hit, language="pt_BR")
        _contact(inbox, miss, language="es")
    elif kind == "tags":
        _contact(inbox, hit, profile={"tags": ["gold"]})
        _contact(inbox, miss, profile={"tags": ["Gold", "newsletter"]})      # tags match exactly
    elif kind == "attributes":
        _contact(inbox, hit, profile={"tier": " premium ", "beta": "yes"})     # normalised like attribute filters
        _contact(inbox, miss, profile={"tier": "premium", "beta": False})
    elif kind == "keyword":
        hit_body, miss_body = "Quiero un REEMBOLSO, por favor", "where is my parcel?"
    send = _sms if channel is sms else _wa
    send(inbox, channel, hit, hit_body)
    _wa(inbox, wa, miss, miss_body)
    routed = _thread_of(inbox, hit, "twilio" if channel is sms else "whatsapp")
    assert routed["team"] == {"id": team["id"], "name": team["name"]} and routed["assignee"] is None
    [event] = _assignments(inbox, routed["id"])
    assert (event["kind"], event["actor"], event["detail"]) == (
        "assigned", "routing", {"team_id": team["id"], "agent_id": None, "reason": "routing"})
    assert _thread_of(inbox, miss, "whatsapp")["team"] is None


def test_rules_run_by_priority_disabled_ones_are_skipped_and_a_rule_may_name_the_agent(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    first, second, third = _team(inbox), _team(inbox), _team(inbox)
    lead = _agent(inbox, third)
    _agent(inbox, third)
    _rule(inbox, first, {"channel_kind": "whatsapp"}, priority=1, enabled=False)
    _rule(inbox, second, {}, priority=50)
    _rule(inbox, third, {"keyword": {"match": "whole", "keywords": ["urgent"]}}, priority=10, agent_id=lead["id"])
    urgent, calm = _phone(), _phone()
    _wa(inbox, wa, urgent, "URGENT!")
    _wa(inbox, wa, calm, "hello")
    got = _thread_of(inbox, urgent)
    assert got["team"]["id"] == third["id"]
    assert got["assignee"] == {"id": lead["id"], "external_id": lead["external_id"], "name": "Agent"}
    assert _thread_of(inbox, calm)["team"]["id"] == second["id"]
    # The inbox list shows the same shapes and filters by them.
    listed = _ok(inbox.api("GET", f"/v1/threads?assignee={lead['id']}"))["data"]
    assert [t["id"] for t in listed] == [got["id"]] and listed[0]["team"]["name"] == third["name"]


# --- choosing the agent --------------------------------------------------------------------------------------

def test_round_robin_takes_turns_among_available_agents_and_skips_the_others(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    team = _team(inbox, strategy="round_robin")
    a, b, c = (_agent(inbox, team) for _ in range(3))
    _agent(inbox, team, availability="away")
    _agent(inbox, team, availability="offline")
    _rule(inbox, team)
    phones = [_phone() for _ in range(6)]
    for p in phones:
        _wa(inbox, wa, p)
    assert [_agent_of(_thread_of(inbox, p)) for p in phones] == [a["id"], b["id"], c["id"]] * 2
    # In one worker batch (one transaction) too: each assignment takes the next turn.
    batch = [_phone() for _ in range(3)]
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], messages=[text(p, "hi", ts=int(time.time()) - 2)
                                                                      for p in batch]))
    inbox.drain()
    assert sorted(_agent_of(_thread_of(inbox, p)) for p in batch) == sorted([a["id"], b["id"], c["id"]])
    team_view = _ok(inbox.api("GET", f"/v1/teams/{team['id']}"))
    assert sorted(m["open_threads"] for m in team_view["members"]) == [0, 0, 3, 3, 3]
    with db.connection() as conn:
        data = conn.execute("SELECT data FROM events WHERE account_id = %s AND type = 'thread.assigned' "
                            "AND subject_id = %s", (inbox.account_id, _thread_of(inbox, phones[0])["id"])).fetchone()
    assert (data["data"]["agent_id"], data["data"]["reason"], data["data"]["by"]) == (a["id"], "routing", "routing")


def test_least_busy_gives_the_thread_to_the_agent_with_fewest_open_threads(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    team = _team(inbox, strategy="least_busy")
    a, b, c = (_agent(inbox, team) for _ in range(3))
    early = [_phone() for _ in range(3)]
    for p in early:               # no rule yet: these stay unrouted until assigned by hand
        _wa(inbox, wa, p)
    for p, agent in zip(early, (a, a, b)):
        _ok(_assign(inbox, _thread_of(inbox, p)["id"], team_id=team["id"], agent_id=agent["id"]))
    _rule(inbox, team)
    later = [_phone() for _ in range(3)]
    for p in later:
        _wa(inbox, wa, p)
    # Loads a=2, b=1, c=0 → c; then b and c tie at 1 and b's turn is older → b; then a=2, b=2, c=1 → c.
    assert [_agent_of(_thread_of(inbox, p)) for p in later] == [c["id"], b["id"], c["id"]]
    # A resolved thread no longer counts.
    for p in early[:2]:
        _ok(inbox.api("POST", f"/v1/threads/{_thread_of(inbox, p)['id']}/status", json={"status": "resolved"}))
    last = _phone()
    _wa(inbox, wa, last)
    assert _agent_of(_thread_of(inbox, last)) == a["id"]


def test_capacity_is_respected_unless_forced_and_full_teams_queue(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    team = _team(inbox)
    a, b = _agent(inbox, team, capacity=1), _agent(inbox, team, capacity=1)
    _rule(inbox, team)
    phones = [_phone() for _ in range(3)]
    for p in phones:
        _wa(inbox, wa, p)
    first, second, third = (_thread_of(inbox, p) for p in phones)
    assert (_agent_of(first), _agent_of(second), _agent_of(third)) == (a["id"], b["id"], None)
    assert third["team"]["id"] == team["id"]
    r = _assign(inbox, third["id"], agent_id=a["id"])
    assert r.status_code == 409 and r.json["type"].endswith("/agent-at-capacity")
    assert (r.json["agent_id"], r.json["capacity"], r.json["open_threads"]) == (a["id"], 1, 1)
    assert a["external_id"] in r.json["detail"] and "force" in r.json["detail"]
    forced = _ok(_assign(inbox, third["id"], agent_id=a["id"], force=True))
    assert _agent_of(forced) == a["id"] and forced["team"]["id"] == team["id"]
    assert _assignments(inbox, third["id"])[-1]["detail"] == {"team_id": team["id"], "agent_id": a["id"],
                                                              "reason": "api", "forced": True}
    # Assigning again to the agent who has it already is no change and no conflict.
    _ok(_assign(inbox, first["id"], agent_id=a["id"]))
    assert len(_assignments(inbox, first["id"])) == 1
    # An agent who leaves: their threads wait in the team's queue again.
    assert inbox.api("DELETE", f"/v1/agents/{a['id']}").status_code == 204
    assert [t["id"] for t in _ok(inbox.api("GET", f"/v1/queues/{team['id']}"))["data"]] == [first["id"], third["id"]]


# --- the queue -------------------------------------------------------------------------------------------------

def test_the_queue_is_oldest_first_and_drains_when_an_agent_becomes_available_or_frees_capacity(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    team = _team(inbox)
    agent = _agent(inbox, team, availability="offline", capacity=2)
    _rule(inbox, team)
    old, older, oldest = _phone(), _phone(), _phone()
    _wa(inbox, wa, old, ago=100)            # arrival order is not waiting order: the last message's time is
    _wa(inbox, wa, oldest, ago=300)
    _wa(inbox, wa, older, ago=200)
    ids = {p: _thread_of(inbox, p)["id"] for p in (old, older, oldest)}
    key = _ok(inbox.api("POST", "/v1/api-keys", json={"name": "agent", "scopes": ["messages:read"]}), 201)["key"]
    page = _ok(inbox.api("GET", f"/v1/queues/{team['id']}?limit=2", headers={"Authorization": f"Bearer {key}"}))
    assert page["team"]["id"] == team["id"] and [t["id"] for t in page["data"]] == [ids[oldest], ids[older]]
    assert page["data"][0]["waiting_since"] < page["data"][1]["waiting_since"]
    rest = _ok(inbox.api("GET", f"/v1/queues/{team['id']}?limit=2&after={page['next']}"))
    assert [t["id"] for t in rest["data"]] == [ids[old]] and rest["next"] is None
    assert _ok(inbox.api("GET", f"/v1/teams/{team['id']}"))["queued"] == 3

    # Back at work with room for two: the two longest waiting come to the agent.
    back = _ok(inbox.api("PATCH", f"/v1/agents/{agent['id']}", json={"availability": "available"}))
    assert back["assigned_thread_ids"] == [ids[oldest], ids[older]] and back["open_threads"] == 2
    assert [t["id"] for t in _ok(inbox.api("GET", f"/v1/queues/{team['id']}"))["data"]] == [ids[old]]
    assert _assignments(inbox, ids[oldest])[-1]["detail"]["reason"] == "queue"
    # Resolving one frees a place: the next one waiting follows.
    _ok(inbox.api("POST", f"/v1/threads/{ids[oldest]}/status", json={"status": "resolved"}))
    assert _agent_of(_thread_of(inbox, old)) == agent["id"]
    assert _ok(inbox.api("GET", f"/v1/queues/{team['id']}"))["data"] == []

    # Unassigning puts a thread back in the queue.
    back_in = _ok(_assign(inbox, ids[older], agent_id=None))
    assert back_in["assignee"] is None and back_in["team"]["id"] == team["id"]
    assert _assignments(inbox, ids[older])[-1]["kind"] == "unassigned"
    assert [t["id"] for t in _ok(inbox.api("GET", f"/v1/queues/{team['id']}"))["data"]] == [ids[older]]
    # A new member with room takes it at once.
    helper = _agent(inbox)
    joined = _ok(inbox.api("PUT", f"/v1/teams/{team['id']}/members/{helper['id']}"), 201)
    assert joined["assigned_thread_ids"] == [ids[older]]


# --- sticky routing --------------------------------------------------------------------------------------------

def test_a_returning_customer_goes_back_to_their_agent_on_another_channel_unless_they_are_away(client):
    inbox = make_inbox(client)
    wa, sms = _channel(inbox, "whatsapp"), _channel(inbox, "twilio")
    team = _team(inbox)
    a, b = _agent(inbox, team), _agent(inbox, team)
    _rule(inbox, team)
    phone = _phone()
    _wa(inbox, wa, phone)
    on_wa = _thread_of(inbox, phone)
    assert _agent_of(on_wa) == a["id"]
    _ok(inbox.api("POST", f"/v1/threads/{on_wa['id']}/status", json={"status": "resolved"}))
    # Round robin would give b the next thread; the customer's last agent gets it instead, on SMS.
    _sms(inbox, sms, phone, "me again")
    on_sms = _thread_of(inbox, phone, "twilio")
    assert _agent_of(on_sms) == a["id"] and on_sms["team"]["id"] == team["id"]
    assert _assignments(inbox, on_sms["id"])[-1]["detail"]["reason"] == "sticky"
    # Someone else is routed as usual.
    other = _phone()
    _wa(inbox, wa, other)
    assert _agent_of(_thread_of(inbox, other)) == b["id"]

    # The agent went home: the reopened conversation falls back to the team's strategy.
    _ok(inbox.api("POST", f"/v1/threads/{on_sms['id']}/status", json={"status": "resolved"}))
    _ok(inbox.api("PATCH", f"/v1/agents/{a['id']}", json={"availability": "offline"}))
    _sms(inbox, sms, phone, "hello?")
    reopened = _thread_of(inbox, phone, "twilio")
    assert reopened["status"] == "open" and _agent_of(reopened) == b["id"]
    assert _assignments(inbox, reopened["id"])[-1]["detail"] == {"team_id": team["id"], "agent_id": b["id"],
                                                                 "reason": "routing"}
    # Later messages of a routed conversation do not route it again.
    _sms(inbox, sms, phone, "still there?")
    assert len(_assignments(inbox, reopened["id"])) == 2


def test_sticky_without_rules_through_a_merged_contact(client):
    inbox = make_inbox(client)
    wa, page = _channel(inbox, "whatsapp"), _channel(inbox, "messenger")
    team = _team(inbox)
    agent = _agent(inbox, team)
    phone, psid = _phone(), f"PSID-{secrets.token_hex(4)}"
    _wa(inbox, wa, phone)
    on_wa = _thread_of(inbox, phone)
    assert on_wa["team"] is None          # no rule: nothing routes a first-time customer
    assigned = _ok(_assign(inbox, on_wa["id"], agent_id=agent["id"]))
    assert assigned["team"]["id"] == team["id"]     # the agent's only team
    _messenger(inbox, page, "hi", psid=psid)
    on_fb = _thread_of(inbox, psid, "messenger")
    assert on_fb["assignee"] is None
    # The CRM knows the two are one person: merged, the Messenger conversation's next opening goes to the agent
    # who helped the WhatsApp contact.
    _ok(inbox.api("POST", f"/v1/contacts/{on_fb['contact_id']}/merge", json={"contact_id": on_wa["contact_id"]}),
        201)
    _ok(inbox.api("POST", f"/v1/threads/{on_fb['id']}/status", json={"status": "resolved"}))
    _messenger(inbox, page, "back again", psid=psid)
    back = _thread_of(inbox, psid, "messenger")
    assert _agent_of(back) == agent["id"] and back["team"]["id"] == team["id"]
    assert _assignments(inbox, back["id"])[-1]["detail"]["reason"] == "sticky"


# --- automations -----------------------------------------------------------------------------------------------

def test_a_flow_hand_off_to_a_team_routes_to_one_of_its_agents(client, sandbox):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp", sandbox)
    team = _team(inbox, "support")
    busy = _agent(inbox, team, capacity=0)
    agent = _agent(inbox, team, languages=["en"])
    _ok(inbox.api("POST", "/v1/automations", json=SUPPORT_FLOW), 201)
    phone = _phone()
    _wa_text(inbox, ch, phone, "menu")
    [main] = _wait_count(inbox, sandbox, phone, 1, "the menu")
    assert _thread_of(inbox, phone)["team"] is None
    _wa_tap(inbox, ch, phone, _button_ids(main)[2], "Talk to a person")
    _wait_count(inbox, sandbox, phone, 2, "the hand-off message")
    thread = _thread_of(inbox, phone)
    assert thread["handler"] == "human" and thread["team"]["id"] == team["id"]
    assert _agent_of(thread) == agent["id"] != busy["id"]
    [event] = _assignments(inbox, thread["id"])
    assert event["actor"] == "automation" and event["detail"] == {"team_id": team["id"], "agent_id": agent["id"],
                                                                  "reason": "automation"}


def test_a_hand_off_to_a_team_nobody_created_makes_it_and_queues_the_thread(client, sandbox):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp", sandbox)
    _ok(inbox.api("POST", "/v1/automations", json={
        "name": "billing", "kind": "keyword", "priority": 1,
        "definition": {"match": "contains", "keywords": ["invoice"],
                       "actions": [{"type": "reply", "text": "Billing will answer."},
                                   {"type": "assign", "team": "billing"}]}}), 201)
    phone = _phone()
    _wa_text(inbox, ch, phone, "my invoice is wrong")
    _wait_count(inbox, sandbox, phone, 1, "the reply")
    thread = _thread_of(inbox, phone)
    assert thread["team"]["name"] == "billing" and thread["assignee"] is None
    [team] = _ok(inbox.api("GET", "/v1/teams"))["data"]
    assert team["name"] == "billing" and team["strategy"] == "round_robin" and team["queued"] == 1
    agent = _agent(inbox, team)     # joining, available: the waiting thread is theirs
    assert _agent_of(_thread_of(inbox, phone)) == agent["id"]


def test_the_survey_names_the_agent_and_its_answer_is_no_new_conversation_to_route(client, sandbox):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp", sandbox)
    _ok(inbox.api("PUT", "/v1/surveys/config", json={"kind": "csat", "questions": {"en": "How did we do?"}}))
    team = _team(inbox)
    first = _agent(inbox, team, external_id="crm-7")
    _agent(inbox, team, external_id="crm-8")
    _rule(inbox, team)
    phone = _phone()
    _wa(inbox, ch, phone)
    thread = _thread_of(inbox, phone)
    assert _agent_of(thread) == first["id"]
    _ok(inbox.api("POST", f"/v1/threads/{thread['id']}/status", json={"status": "resolved"}))
    _ok(inbox.api("PATCH", f"/v1/agents/{first['id']}", json={"availability": "offline"}))
    # The score reopens the thread for a moment; the survey puts it back to resolved, and routing leaves it be
    # (it would have gone to crm-8, the agent at work).
    _wa(inbox, ch, phone, "5")
    after = _thread_of(inbox, phone)
    assert after["status"] == "resolved" and _agent_of(after) == first["id"]
    assert len(_assignments(inbox, thread["id"])) == 1
    with db.connection() as c:
        asked = c.execute("SELECT assignee FROM survey_requests WHERE account_id = %s AND thread_id = %s",
                          (inbox.account_id, thread["id"])).fetchone()
        answered = c.execute("SELECT assignee, score FROM survey_responses WHERE account_id = %s AND thread_id = %s",
                             (inbox.account_id, thread["id"])).fetchone()
    assert asked["assignee"] == "crm-7" and (answered["assignee"], answered["score"]) == ("crm-7", 5)
    # A real new message afterwards is a new conversation: routed, to the agent at work.
    _wa(inbox, ch, phone, "one more thing")
    assert _thread_of(inbox, phone)["assignee"]["external_id"] == "crm-8"


# --- bad input and tenant walls ---------------------------------------------------------------------------------

def test_assignment_refusals_and_tenant_walls(client):
    inbox, other = make_inbox(client), make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    team, elsewhere = _team(inbox), _team(inbox)
    agent = _agent(inbox, team)
    foreign_team = _team(other)
    foreign_agent = _agent(other, foreign_team)
    phone = _phone()
    _wa(inbox, wa, phone)
    thread = _thread_of(inbox, phone)
    missing = "00000000-0000-7000-8000-000000000000"

    r = _assign(inbox, thread["id"], agent_id=foreign_agent["id"])
    assert r.status_code == 404 and r.json["type"].endswith("/agent-not-found")
    r = _assign(inbox, thread["id"], team_id=foreign_team["id"])
    assert r.status_code == 404 and r.json["type"].endswith("/team-not-found")
    r = _assign(inbox, thread["id"], team_id=missing)
    assert r.status_code == 404 and r.json["type"].endswith("/team-not-found")
    r = _assign(inbox, thread["id"], team_id=elsewhere["id"], agent_id=agent["id"])
    assert r.status_code == 409 and r.json["type"].endswith("/agent-not-in-team")
    assert f"/v1/teams/{elsewhere['id']}/members/{agent['id']}" in r.json["detail"]
    r = _assign(inbox, missing, agent_id=agent["id"])
    assert r.status_code == 404
    r = _assign(other, thread["id"], agent_id=foreign_agent["id"])     # the other tenant cannot reach the thread
    assert r.status_code == 404 and r.json["type"].endswith("/thread-not-found")
    r = _assign(inbox, thread["id"], agent_id="bob", force="yes", colour=1)
    assert r.status_code == 422 and {e["pointer"] for e in r.json["errors"]} == {"/agent_id", "/force", "/colour"}
    assert _assign(inbox, thread["id"]).status_code == 422
    assert _thread_of(inbox, phone)["assignee"] is None and _assignments(inbox, thread["id"]) == []

    # To a team: its strategy picks the agent; out of it again with nulls.
    done = _ok(_assign(inbox, thread["id"], team_id=team["id"]))
    assert _agent_of(done) == agent["id"]
    cleared = _ok(_assign(inbox, thread["id"], team_id=None, agent_id=None))
    assert cleared["team"] is None and cleared["assignee"] is None

    # Nothing of one account is visible or usable from the other.
    assert other.api("GET", f"/v1/queues/{team['id']}").status_code == 404
    assert other.api("GET", f"/v1/teams/{team['id']}").status_code == 404
    assert other.api("GET", f"/v1/agents/{agent['id']}").status_code == 404
    assert other.api("PATCH", f"/v1/agents/{agent['id']}", json={"availability": "away"}).status_code == 404
    assert other.api("PUT", f"/v1/teams/{foreign_team['id']}/members/{agent['id']}").status_code == 404
    assert [a["id"] for a in _ok(other.api("GET", "/v1/agents"))["data"]] == [foreign_agent["id"]]
    assert [t["id"] for t in _ok(other.api("GET", "/v1/teams"))["data"]] == [foreign_team["id"]]
    r = other.api("POST", "/v1/routing-rules", json={"name": "steal", "team_id": team["id"]})
    assert r.status_code == 422 and [e["pointer"] for e in r.json["errors"]] == ["/team_id"]

"""Automation rules end to end: signed webhooks → the real inbound worker → the rules engine → the send gate →
RQ send workers → the sandbox provider. Plus business hours (hours.py) with fixed datetimes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gateway.automation import hours, text_match
from tests.gateway.test_send_end_to_end import _setup, gateway_url, received, sandbox, wait_for  # noqa: F401
from tests.webhooks.test_receiver import text, wa_body

MADRID = ZoneInfo("Europe/Madrid")
WEEKDAYS_9_TO_18 = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- hours.py with fixed datetimes -----------------------------------------------------------------------

SPAIN = {"timezone": "Europe/Madrid", "weekly": WEEKDAYS_9_TO_18}


def test_opening_hours_are_wall_clock_on_both_sides_of_the_march_dst_change():
    # Friday 27 March 2026 is CET (+1); Monday 30 March is CEST (+2): 09:00 is 08:00Z, then 07:00Z.
    assert hours.is_open(SPAIN, utc(2026, 3, 27, 8, 0)) and not hours.is_open(SPAIN, utc(2026, 3, 27, 7, 59))
    assert hours.is_open(SPAIN, utc(2026, 3, 30, 7, 0)) and not hours.is_open(SPAIN, utc(2026, 3, 30, 6, 59))
    assert not hours.is_open(SPAIN, utc(2026, 3, 30, 16, 0))   # 18:00 CEST
    back = hours.next_open(SPAIN, utc(2026, 3, 27, 17, 0))      # Friday 18:00 CET: closed for the weekend
    assert back == utc(2026, 3, 30, 7, 0) and back.utcoffset() == timedelta(hours=2)
    assert (back.hour, back.minute) == (9, 0)


def test_opening_hours_across_the_october_dst_change():
    # Sunday 25 October 2026 03:00 CEST → 02:00 CET.
    back = hours.next_open(SPAIN, utc(2026, 10, 23, 16, 30))    # Friday 18:30 CEST
    assert back == utc(2026, 10, 26, 8, 0) and back.utcoffset() == timedelta(hours=1)
    assert hours.is_open(SPAIN, utc(2026, 10, 23, 15, 59)) and not hours.is_open(SPAIN, utc(2026, 10, 23, 16, 0))


def test_an_interval_through_the_skipped_and_the_repeated_hour():
    night = {"timezone": "Europe/Madrid", "weekly": {"sun": [["01:00", "04:00"]]}}
    # 29 March 2026: 02:00-03:00 does not exist; 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z: two real hours.
    assert hours.is_open(night, utc(2026, 3, 29, 0, 0)) and hours.is_open(night, utc(2026, 3, 29, 1, 59))
    assert not hours.is_open(night, utc(2026, 3, 29, 2, 0))
    # 25 October 2026: 02:00-03:00 happens twice; 01:00 CEST = 23:00Z (24th), 04:00 CET = 03:00Z: four hours.
    assert hours.is_open(night, utc(2026, 10, 24, 23, 0)) and hours.is_open(night, utc(2026, 10, 25, 2, 59))
    assert not hours.is_open(night, utc(2026, 10, 25, 3, 0))
    gap = {"timezone": "Europe/Madrid", "weekly": {"sun": [["02:30", "05:00"]]}}
    # A start the clock skips opens just after the gap.
    assert hours.next_open(gap, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 30)


def test_holidays_ranges_and_exceptions():
    schedule = dict(SPAIN, holidays=["2026-12-25", {"from": "2026-12-28", "to": "2026-12-31"}],
                    exceptions=[{"date": "2026-12-24", "hours": [["09:00", "13:00"]]},
                                {"date": "2026-12-26", "hours": [["10:00", "12:00"]]}])   # a Saturday, opened
    assert hours.is_open(schedule, utc(2026, 12, 24, 11, 59)) and not hours.is_open(schedule, utc(2026, 12, 24, 12, 0))
    assert not hours.is_open(schedule, utc(2026, 12, 25, 10, 0))
    assert hours.next_open(schedule, utc(2026, 12, 24, 12, 0)) == utc(2026, 12, 26, 9, 0)
    assert hours.next_open(schedule, utc(2026, 12, 26, 9, 30)) == utc(2026, 12, 26, 9, 30)   # the opened Saturday
    # Monday 28 to Thursday 31 are holidays: back on Friday 1 January 2027... which is a weekday.
    assert hours.next_open(schedule, utc(2026, 12, 26, 12, 0)) == utc(2027, 1, 1, 8, 0)
    assert hours.next_open(schedule, utc(2026, 12, 24, 10, 0)) == utc(2026, 12, 24, 10, 0)   # open: now


def test_next_open_is_none_when_closed_for_more_than_a_year_and_the_account_zone_is_the_default():
    closed = {"weekly": {"mon": [["09:00", "10:00"]]}, "holidays": [{"from": "2026-01-01", "to": "2028-01-01"}]}
    assert hours.next_open(closed, utc(2026, 6, 1)) is None
    tokyo = {"weekly": {"mon": [["09:00", "10:00"]]}}
    assert hours.next_open(tokyo, utc(2026, 6, 5), default_tz="Asia/Tokyo") == utc(2026, 6, 8, 0, 0)
    with pytest.raises(ValueError):
        hours.is_open(tokyo, datetime(2026, 6, 5))


def test_schedule_problems_point_at_each_mistake():
    found = hours.problems({"timezone": "Mars/Olympus", "weekly": {"mon": [["9:00", "18:00"], ["19:00", "18:00"],
                                                                           ["10:00", "12:00"], ["10:30", "11:00"]],
                                                                   "funday": []},
                            "holidays": ["2026-13-01", {"from": "2026-02-01"}], "exceptions": [{"date": "x"}]})
    pointers = [p["pointer"] for p in found]
    assert pointers == ["/timezone", "/weekly/mon/0/0", "/weekly/mon/1", "/weekly/mon/3", "/weekly/funday",
                        "/holidays/0", "/holidays/1/to", "/exceptions/0/date", "/exceptions/0/hours"]
    assert hours.problems({"weekly": {}}) == [{"pointer": "/weekly",
                                               "detail": "the schedule is never open: give at least one interval"}]


def test_notice_placeholders_are_in_the_schedule_zone_and_the_contact_language():
    got = hours.placeholders(utc(2026, 3, 30, 7, 0), MADRID, "es")
    assert got == {"next_open": "lunes 30/03/2026 09:00", "next_open_day": "lunes", "next_open_date": "2026-03-30",
                   "next_open_time": "09:00", "timezone": "Europe/Madrid"}


# --- matching (pure) --------------------------------------------------------------------------------------

def test_keyword_modes_ignore_case_accents_and_punctuation():
    whole = {"match": "whole", "keywords": ["Horario", "¿a qué hora abrís?"]}
    assert text_match.keyword_matches(whole, "HORARIO!") and text_match.keyword_matches(whole, "a que hora abris")
    assert not text_match.keyword_matches(whole, "horario de verano")
    contains = {"match": "contains", "keywords": ["envío", "devolución"]}
    assert text_match.keyword_matches(contains, "¿Cuánto tarda el ENVIO a Canarias?")
    assert not text_match.keyword_matches(contains, "envios")   # whole words only
    regex = {"match": "regex", "pattern": r"pedido\s*#?\d{5,}"}
    assert text_match.keyword_matches(regex, "Mi Pédido #123456 no llegó") and not text_match.keyword_matches(regex, "pedido 12")
    assert text_match.handoff_matches({}, "Quiero hablar con una persona, por favor")
    assert text_match.handoff_matches({}, "agent") and text_match.handoff_matches({}, "Falar com atendente")
    assert not text_match.handoff_matches({}, "personalizar mi pedido")
    assert text_match.handoff_matches({"keywords": {"es": ["encargado"]}}, "el encargado")


# --- helpers for the end-to-end tests -------------------------------------------------------------------

def _rule(inbox, **doc):
    r = inbox.api("POST", "/v1/automations", json=doc)
    assert r.status_code == 201, r.json
    return r.json


def _say(inbox, ch, body, phone="34600000901"):
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(phone, body, ts=int(time.time()) - 2)]))
    inbox.drain()


def _thread(inbox):
    return inbox.threads()[0]


def _texts(sandbox) -> list[str]:
    return [m["body"]["text"]["body"] for m in received(sandbox)
            if 200 <= m["http_status"] < 300 and m["body"].get("type") == "text"]


def _sent(inbox, sandbox, n, what="replies sent"):
    """Wait until the sandbox got n automated texts, then check no more come."""
    wait_for(lambda: len(_texts(sandbox)) >= n, inbox, what=what)
    wait_for(lambda: True, inbox)
    got = _texts(sandbox)
    assert len(got) == n, got
    return got


def _decisions(inbox, thread_id) -> list[dict]:
    r = inbox.api("GET", f"/v1/threads/{thread_id}/decisions")
    assert r.status_code == 200, r.json
    return list(reversed(r.json["data"]))   # oldest first


def _reply(body):
    return [{"type": "reply", "text": body}]


# --- end to end ------------------------------------------------------------------------------------------

def test_welcome_on_a_new_contacts_first_message_only(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    rule = _rule(inbox, name="welcome", kind="welcome", priority=1,
                 definition={"actions": [{"type": "reply", "text": {"es": "¡Hola! Gracias por escribir.",
                                                                      "en": "Hi! Thanks for writing."}}]})
    _say(inbox, ch, "Hola, ¿tenéis la talla 42?")
    _say(inbox, ch, "¿Y en azul?")
    assert _sent(inbox, sandbox, 1) == ["Hi! Thanks for writing."]   # no language known: the account's, then en
    thread = _thread(inbox)
    decisions = _decisions(inbox, thread["id"])
    assert [(d["automation_id"], d["rule_kind"], d["outcome"]) for d in decisions] == [
        (rule["id"], "welcome", "acted")]
    [sent_id] = decisions[0]["sent_message_ids"]
    message = inbox.api("GET", f"/v1/messages/{sent_id}").json
    assert message["purpose"] == "transactional" and message["direction"] == "outbound"
    from gateway import db
    with db.connection() as c:
        assert c.execute("SELECT automated FROM messages WHERE account_id = %s AND id = %s",
                         (inbox.account_id, sent_id)).fetchone()["automated"] is True


def test_each_keyword_mode_and_priority_first_match_acts(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    _rule(inbox, name="hours", kind="keyword", priority=10,
          definition={"match": "whole", "keywords": ["horario", "hours"], "actions": _reply("De 9 a 18.")})
    _rule(inbox, name="shipping", kind="keyword", priority=20,
          definition={"match": "contains", "keywords": ["envío"], "actions": _reply("Envío en 48 h.")})
    _rule(inbox, name="order", kind="keyword", priority=30,
          definition={"match": "regex", "pattern": r"pedido\s*#?\d{5,}", "actions": [
              _reply("Miramos tu pedido.")[0], {"type": "set_attribute", "name": "asked_order", "value": True},
              {"type": "set_tag", "tag": "pedidos"}]})
    _rule(inbox, name="shipping-en", kind="keyword", priority=5,   # only for English speakers
          definition={"match": "contains", "keywords": ["envio"], "language": "en", "actions": _reply("Ships in 2d")})
    from gateway import db
    with db.connection() as c:
        c.execute("UPDATE accounts SET default_language = 'es' WHERE id = %s", (inbox.account_id,))
    _say(inbox, ch, "HORARIO")
    _say(inbox, ch, "cuanto tarda el ENVIO de mi pedido 123456")   # shipping (20) and order (30): shipping acts
    _say(inbox, ch, "El pédido #99999 no llegó")
    _say(inbox, ch, "gracias")                                     # nothing matches: no decision
    assert _sent(inbox, sandbox, 3) == ["De 9 a 18.", "Envío en 48 h.", "Miramos tu pedido."]
    thread = _thread(inbox)
    assert [d["outcome"] for d in _decisions(inbox, thread["id"])] == ["acted"] * 3
    contact = inbox.api("GET", f"/v1/contacts/{thread['contact_id']}").json
    assert contact["profile"] == {"asked_order": True} and contact["tags"] == ["pedidos"]


def _next_dst_change(tz: ZoneInfo, today: date) -> date:
    """The first local day after today whose noon has another UTC offset than today's."""
    noon = lambda d: datetime(d.year, d.month, d.day, 12, tzinfo=tz).utcoffset()  # noqa: E731
    day = today
    while noon(day + timedelta(days=1)) == noon(today):
        day += timedelta(days=1)
    return day + timedelta(days=1)


def test_business_hours_notice_once_per_closed_period_across_a_dst_change_and_holidays(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    from gateway import db
    with db.connection() as c:
        c.execute("UPDATE accounts SET timezone = 'Europe/Madrid' WHERE id = %s", (inbox.account_id,))
    today = datetime.now(MADRID).date()
    change = _next_dst_change(MADRID, today)
    every_day = {d: [["09:00", "18:00"]] for d in hours.DAYS}
    # Closed for holidays from today through the day of the next DST change: the team is back the day after,
    # at 09:00 local, on the other side of the change.
    rule = _rule(inbox, name="closed", kind="business_hours", priority=1, definition={
        "schedule": {"weekly": every_day, "holidays": [{"from": today.isoformat(), "to": change.isoformat()}]},
        "actions": _reply("Estamos cerrados. Volvemos el {next_open_date} a las {next_open_time} ({timezone}).")})
    _rule(inbox, name="hola", kind="keyword", priority=2,
          definition={"match": "contains", "keywords": ["hola"], "actions": _reply("¡Hola!")})
    _say(inbox, ch, "hola, ¿abrís?")
    _say(inbox, ch, "¿hay alguien?")         # same closed period: no second notice, and no rule after it
    back = change + timedelta(days=1)
    assert _sent(inbox, sandbox, 1) == [f"Estamos cerrados. Volvemos el {back.isoformat()} a las 09:00 "
                                        "(Europe/Madrid)."]
    thread = _thread(inbox)
    [notice] = _decisions(inbox, thread["id"])
    expected = datetime(back.year, back.month, back.day, 9, tzinfo=MADRID)
    assert expected.utcoffset() != datetime(today.year, today.month, today.day, 12, tzinfo=MADRID).utcoffset()
    assert datetime.fromisoformat(notice["closed_until"].replace("Z", "+00:00")) == expected
    _say(inbox, ch, "hola otra vez")          # the notice went: later rules answer meanwhile
    assert _sent(inbox, sandbox, 2)[-1] == "¡Hola!"
    # Another closed period (the holidays now end a day later): one more notice.
    definition = dict(rule["definition"], schedule=dict(rule["definition"]["schedule"], holidays=[
        {"from": today.isoformat(), "to": back.isoformat()}]))
    r = inbox.api("PUT", f"/v1/automations/{rule['id']}", json=dict(
        name="closed", kind="business_hours", priority=1, definition=definition))
    assert r.status_code == 200, r.json
    _say(inbox, ch, "¿sigue cerrado?")
    assert _sent(inbox, sandbox, 3)[-1].startswith(f"Estamos cerrados. Volvemos el {(back + timedelta(days=1))}")


def test_handoff_keyword_then_silence_then_hand_back_over_the_api(client, sandbox, conn):
    inbox, ch = _setup(client, sandbox)
    _rule(inbox, name="person", kind="handoff", priority=1,
          definition={"actions": _reply("Te paso con una persona del equipo.")})
    _rule(inbox, name="hola", kind="keyword", priority=2,
          definition={"match": "contains", "keywords": ["hola"], "actions": _reply("¡Hola!")})
    _say(inbox, ch, "hola")
    _say(inbox, ch, "Quiero hablar con un humano")
    _say(inbox, ch, "hola??")                       # a person has it now: the bot stays silent
    assert _sent(inbox, sandbox, 2) == ["¡Hola!", "Te paso con una persona del equipo."]
    thread = _thread(inbox)
    assert [(d["rule_kind"], d["outcome"], d["reason"]) for d in _decisions(inbox, thread["id"])] == [
        ("keyword", "acted", None), ("handoff", "acted", None), ("keyword", "skipped", "handler_human")]
    conn.commit()
    [event] = conn.execute("SELECT type, subject_id, data FROM events WHERE account_id = %s AND type = %s",
                           (inbox.account_id, "thread.handed_off")).fetchall()
    assert str(event["subject_id"]) == thread["id"] and event["data"]["reason"] == "rule"

    r = inbox.api("POST", f"/v1/threads/{thread['id']}/handler", json={"handler": "bot"})
    assert r.status_code == 200 and r.json["handler"] == "bot" and r.json["changed"] is True
    _say(inbox, ch, "hola de nuevo")
    assert _sent(inbox, sandbox, 3)[-1] == "¡Hola!"
    r = inbox.api("POST", f"/v1/threads/{thread['id']}/handler", json={"handler": "human"})
    assert r.status_code == 200 and r.json["handler"] == "human" and r.json["handed_off_at"]
    assert inbox.api("POST", f"/v1/threads/{thread['id']}/handler", json={"handler": "robot"}).status_code == 422
    assert [d["outcome"] for d in _decisions(inbox, thread["id"])][-3:] == ["handed_back", "acted", "handed_off"]


def test_the_hourly_cap_stops_a_bot_to_bot_loop(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    assert inbox.api("PUT", "/v1/automation-settings", json={"max_per_thread_per_hour": 3}).json == {
        "max_per_thread_per_hour": 3, "handoff_after_unanswered": 1}
    _rule(inbox, name="echo-bait", kind="keyword", priority=1,
          definition={"match": "contains", "keywords": ["hello"], "actions": _reply("Hello! How can we help?")})
    for _ in range(6):   # another bot answering each of ours with its own greeting
        _say(inbox, ch, "Hello! How can I help you?")
    assert len(_sent(inbox, sandbox, 3)) == 3
    outcomes = [d["outcome"] for d in _decisions(inbox, _thread(inbox)["id"])]
    assert outcomes == ["acted"] * 3 + ["capped"] * 3


def test_no_automated_reply_to_an_opted_out_contact_and_stop_never_triggers_a_rule(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    _rule(inbox, name="catch-all-words", kind="keyword", priority=1,
          definition={"match": "whole", "keywords": ["stop", "help", "hola"], "actions": _reply("Regla")})
    _say(inbox, ch, "HELP")                                  # the consent layer answers, no rule
    _say(inbox, ch, "STOP")
    _say(inbox, ch, "hola")                                  # opted out: the gate refuses the rule's reply
    got = _sent(inbox, sandbox, 2)
    assert "Regla" not in got and got[1].startswith("You have unsubscribed")
    thread = _thread(inbox)
    [decision] = _decisions(inbox, thread["id"])
    assert (decision["outcome"], decision["reason"], decision["sent_message_ids"]) == ("refused", "opted_out", [])


def test_consent_withdrawn_over_the_api_silences_rules(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    _rule(inbox, name="hola", kind="keyword", definition={"match": "contains", "keywords": ["hola"],
                                                          "actions": _reply("¡Hola!")})
    _say(inbox, ch, "hola")
    _sent(inbox, sandbox, 1)
    contact = _thread(inbox)["contact_id"]
    r = inbox.api("POST", f"/v1/contacts/{contact}/consents", json={
        "purpose": "all", "action": "withdrawn", "channel_kind": "whatsapp", "source": "agent",
        "proof": {"text": "asked by phone to get no more messages"}})
    assert r.status_code in (200, 201), r.json
    _say(inbox, ch, "hola")
    _sent(inbox, sandbox, 1)
    assert [d["outcome"] for d in _decisions(inbox, _thread(inbox)["id"])] == ["acted", "refused"]


def test_a_bad_rule_gets_422_listing_every_problem(client):
    from tests.webhooks.conftest import make_inbox
    inbox = make_inbox(client)
    r = inbox.api("POST", "/v1/automations", json={
        "name": "", "kind": "keyword", "priority": "high", "color": "red",
        "definition": {"match": "regex", "pattern": "pedido(\\d+", "actions": [
            {"type": "shout", "text": "x"}, {"type": "reply"}, {"type": "template", "name": "no_such_template"},
            {"type": "set_attribute", "name": "9lives"}, {"type": "set_tag"}]}})
    assert r.status_code == 422, r.json
    pointers = [e["pointer"] for e in r.json["errors"]]
    assert pointers == ["/color", "/name", "/priority", "/definition/pattern", "/definition/actions/0/type",
                        "/definition/actions/1/text", "/definition/actions/1/text",
                        "/definition/actions/2/name", "/definition/actions/3/name", "/definition/actions/3/value",
                        "/definition/actions/4/tag"]
    assert "no template 'no_such_template'" in r.json["errors"][7]["detail"]
    r = inbox.api("POST", "/v1/automations", json={"name": "h", "kind": "business_hours", "definition": {
        "schedule": {"weekly": {"mon": [["18:00", "09:00"]]}, "timezone": "Europe/Atlantis"},
        "actions": _reply("closed")}})
    assert r.status_code == 422
    assert [e["pointer"] for e in r.json["errors"]] == ["/definition/schedule/timezone",
                                                        "/definition/schedule/weekly/mon/0"]
    # CRUD round trip and name uniqueness.
    good = {"name": "h", "kind": "keyword", "definition": {"keywords": ["x"], "actions": _reply("y")}}
    made = inbox.api("POST", "/v1/automations", json=good)
    assert made.status_code == 201
    assert inbox.api("POST", "/v1/automations", json=good).status_code == 409
    assert [a["name"] for a in inbox.api("GET", "/v1/automations").json["data"]] == ["h"]
    assert inbox.api("GET", f"/v1/automations/{made.json['id']}").json["kind"] == "keyword"
    assert inbox.api("DELETE", f"/v1/automations/{made.json['id']}").status_code == 204
    assert inbox.api("GET", f"/v1/automations/{made.json['id']}").status_code == 404


def test_a_template_action_must_be_approved_in_the_catalog(client, conn):
    from templates_catalog import store
    from tests.webhooks.conftest import make_inbox
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp", group_id="WABA-auto")
    store.upsert_from_meta(conn, account_id=inbox.account_id, waba_id="WABA-auto", docs=[
        {"name": "cerrado", "language": "es", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Volvemos pronto"}]},
        {"name": "cerrado", "language": "en", "status": "REJECTED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Back soon"}]}])
    conn.commit()
    rule = {"name": "t", "kind": "keyword", "channel_id": ch["id"], "definition": {"keywords": ["x"], "actions": [
        {"type": "template", "name": "cerrado", "language": "en"}]}}
    r = inbox.api("POST", "/v1/automations", json=rule)
    assert r.status_code == 422 and "REJECTED" in r.json["errors"][0]["detail"]
    rule["definition"]["actions"][0]["language"] = "es"
    assert inbox.api("POST", "/v1/automations", json=rule).status_code == 201


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gateway.cli", "automations", *map(str, args)], env=os.environ,
                          capture_output=True, text=True, timeout=120)


def test_cli_validate_and_load(client, tmp_path):
    (tmp_path / "good.yaml").write_text(
        "- name: welcome\n  kind: welcome\n  definition:\n    actions:\n      - {type: reply, text: Hola}\n"
        "- name: hours\n  kind: business_hours\n  definition:\n    schedule:\n      timezone: Europe/Madrid\n"
        "      weekly: {mon: [['09:00', '18:00']]}\n      holidays: [2026-12-25]\n"
        "    actions: [{type: reply, text: 'Volvemos {next_open}'}]\n")
    done = _cli("validate", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule(s): all valid" in done.stdout
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "kind": "keyword", "definition": {
        "match": "regex", "pattern": "(", "actions": [{"type": "nope"}]}}))
    done = _cli("validate", tmp_path)
    assert done.returncode == 1
    assert "/definition/pattern: not a valid regular expression" in done.stdout
    assert "/definition/actions/0/type: unknown action 'nope'" in done.stdout
    (tmp_path / "bad.json").unlink()
    from tests.webhooks.conftest import make_inbox
    inbox = make_inbox(client)
    done = _cli("load", tmp_path, "--account", inbox.account_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule(s) created, 0 replaced" in done.stdout
    assert sorted(a["name"] for a in inbox.api("GET", "/v1/automations").json["data"]) == ["hours", "welcome"]


# --- the level-1 assistant behind the rules ------------------------------------------------------------

def test_the_assistant_answers_from_the_knowledge_base_then_hands_off_and_goes_silent(client, sandbox, conn):
    from tests.gateway.test_assistant import ENTRIES
    inbox, ch = _setup(client, sandbox)
    _say(inbox, ch, "¿Cuánto cuesta el envío?")          # no knowledge base yet: no assistant, no hand-off
    assert _thread(inbox)["id"] and _decisions(inbox, _thread(inbox)["id"]) == []
    for entry in ENTRIES:
        assert inbox.api("POST", "/v1/knowledge-base", json=entry).status_code == 201
    _rule(inbox, name="hola", kind="keyword", priority=1,
          definition={"match": "whole", "keywords": ["hola"], "actions": _reply("¡Hola! ¿En qué te ayudo?")})
    _say(inbox, ch, "hola")                               # a rule matched: the assistant stays out
    _say(inbox, ch, "¿El envío es gratis?")
    assert _sent(inbox, sandbox, 2) == ["¡Hola! ¿En qué te ayudo?", "Gratis a partir de 50 €; si no, 4,95 €."]
    _say(inbox, ch, "Mi gato se comió el cable del router")   # nothing in the knowledge base: a person takes it
    _say(inbox, ch, "¿Cómo hago una devolución?")             # ...and the bot stays silent from then on
    assert _sent(inbox, sandbox, 2)
    thread = _thread(inbox)
    decisions = [(d["responder"], d["outcome"]) for d in _decisions(inbox, thread["id"])]
    assert decisions == [("rules", "acted"), ("assistant", "answered"), ("assistant", "handed_off")]
    conn.commit()
    [event] = conn.execute("SELECT data FROM events WHERE account_id = %s AND type = 'thread.handed_off'",
                           (inbox.account_id,)).fetchall()
    assert event["data"]["reason"] == "assistant"
    automated = conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND automated",
                             (inbox.account_id,)).fetchone()["n"]
    assert automated == 2


def test_the_assistant_hands_off_after_n_unanswered_questions_in_a_row(client, sandbox):
    from tests.gateway.test_assistant import ENTRIES
    inbox, ch = _setup(client, sandbox)
    for entry in ENTRIES:
        assert inbox.api("POST", "/v1/knowledge-base", json=entry).status_code == 201
    r = inbox.api("PUT", "/v1/automation-settings", json={"handoff_after_unanswered": 3})
    assert r.json == {"max_per_thread_per_hour": 10, "handoff_after_unanswered": 3}
    bad = inbox.api("PUT", "/v1/automation-settings", json={"handoff_after_unanswered": 0, "colour": "red"})
    assert bad.status_code == 422 and {e["pointer"] for e in bad.json["errors"]} == {
        "/handoff_after_unanswered", "/colour"}
    _say(inbox, ch, "Mi gato se comió el cable del router")   # 1st unanswered: asked to say it another way
    _say(inbox, ch, "¿El envío es gratis?")                   # answered: the count starts again
    _say(inbox, ch, "El perro también")                       # 1st
    _say(inbox, ch, "Y el loro")                              # 2nd
    _say(inbox, ch, "Y el pez")                               # 3rd in a row: a person takes it
    got = _sent(inbox, sandbox, 4)
    assert got[1] == "Gratis a partir de 50 €; si no, 4,95 €."
    assert got[0] == got[2] == got[3] and got[0].startswith("Sorry, I am not sure I understood.")
    thread = _thread(inbox)
    assert [d["outcome"] for d in _decisions(inbox, thread["id"])] == [
        "declined", "answered", "declined", "declined", "handed_off"]
    assert inbox.api("GET", f"/v1/threads/{thread['id']}").json["handler"] == "human"

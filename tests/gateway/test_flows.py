"""Menus and small flows end to end: signed webhooks → the real inbound worker → the flow runner → the send gate
→ RQ send workers → the sandbox provider; the same flow on WhatsApp (buttons, lists), SMS (numbered options) and
Messenger (quick replies). Plus the flow validator and the renderer as pure functions."""
from __future__ import annotations

import secrets
import time

import pytest

from gateway import db
from gateway.automation import flows
from tests.gateway.test_keywords import TWILIO_SID, _channel
from tests.gateway.test_send_end_to_end import gateway_url, received, sandbox, wait_for  # noqa: F401  (fixtures)
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text, wa_body

# Three levels: main menu → orders sub-menu (a list: more than three options) → tracking menu → a question
# whose answer is validated and stored, then a message that uses it.
SUPPORT_FLOW = {
    "name": "support-menu", "kind": "flow", "priority": 50,
    "definition": {
        "trigger": {"match": "whole", "keywords": ["menu", "menú"]},
        "start": "main",
        "steps": {
            "main": {"type": "menu", "text": {"en": "How can we help?", "es": "¿En qué te ayudamos?"},
                     "options": [
                         {"id": "orders", "title": {"en": "Orders", "es": "Pedidos"}, "next": "orders"},
                         {"id": "billing", "title": {"en": "Billing", "es": "Facturas"}, "next": "billing"},
                         {"id": "person", "title": {"en": "Talk to a person", "es": "Hablar con alguien"},
                          "next": "agent"}]},
            "orders": {"type": "menu", "text": "Orders: what do you need?", "button": "See options",
                       "options": [
                           {"id": "track", "title": "Track an order", "description": "Where is my parcel?",
                            "next": "track"},
                           {"id": "return", "title": "Return an item", "next": "returns"},
                           {"id": "cancel", "title": "Cancel an order", "next": "agent"},
                           {"id": "back", "title": "Back", "next": "main"}]},
            "track": {"type": "menu", "text": "Did you order online or in a shop?",
                      "options": [{"id": "online", "title": "Online", "next": "ask_order"},
                                  {"id": "shop", "title": "In a shop", "next": "shop_info"}]},
            "ask_order": {"type": "question", "text": "What is your order number? (e.g. AB123456)",
                          "attribute": "order_number", "pattern": "[A-Z]{2}[0-9]{6}",
                          "invalid": "That is not an order number: two capital letters and six digits, e.g. AB123456.",
                          "next": "thanks"},
            "thanks": {"type": "message", "text": "Thanks! We are looking up order {order_number}."},
            "shop_info": {"type": "message", "text": "Shop orders are tracked at the shop's counter."},
            "returns": {"type": "message", "text": "Returns are free within 30 days.", "next": "main"},
            "billing": {"type": "message", "text": "Invoices are in your account page."},
            "agent": {"type": "handoff", "text": "A person will answer you here shortly.", "team": "support"},
        },
    },
}


def _flow(inbox, doc=SUPPORT_FLOW):
    r = inbox.api("POST", "/v1/automations", json=doc)
    assert r.status_code == 201, r.json
    return r.json


def _wa_setup(client, sandbox):
    inbox = make_inbox(client)
    return inbox, _channel(inbox, "whatsapp", sandbox), f"34600{secrets.randbelow(10**6):06d}"


def _wa_send(inbox, ch, phone, msg):
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg]))
    inbox.drain()


def _wa_text(inbox, ch, phone, body):
    _wa_send(inbox, ch, phone, text(phone, body, ts=int(time.time()) - 2))


def _wa_tap(inbox, ch, phone, option_id, title, kind="button_reply"):
    _wa_send(inbox, ch, phone, {
        "from": phone, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(int(time.time()) - 2),
        "type": "interactive", "interactive": {"type": kind, kind: {"id": option_id, "title": title}}})


def _to(sandbox, address) -> list[dict]:
    """What the sandbox got for one customer, oldest first (bodies of accepted requests)."""
    out = []
    for m in received(sandbox):
        body = m["body"]
        if not 200 <= m["http_status"] < 300:
            continue
        if body.get("to") == address or address in str(body.get("To")) or (body.get("recipient") or {}).get("id") == address:
            out.append(body)
    return out


def _wait_count(inbox, sandbox, address, n, what):
    wait_for(lambda: len(_to(sandbox, address)) >= n, inbox, what=what)
    wait_for(lambda: True, inbox)
    got = _to(sandbox, address)
    assert len(got) == n, got
    return got


def _thread(inbox):
    [thread] = inbox.threads()
    return inbox.api("GET", f"/v1/threads/{thread['id']}").json


def _decisions(inbox, thread_id):
    return list(reversed(inbox.api("GET", f"/v1/threads/{thread_id}/decisions").json["data"]))


def _profile(inbox, contact_id):
    return inbox.api("GET", f"/v1/contacts/{contact_id}").json["profile"]


def _button_ids(body):
    return [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]]


def _row_ids(body):
    return [r["id"] for s in body["interactive"]["action"]["sections"] for r in s["rows"]]


# --- end to end ------------------------------------------------------------------------------------------

def test_three_level_menu_on_whatsapp_with_attribute_capture(client, sandbox):
    inbox, ch, phone = _wa_setup(client, sandbox)
    flow = _flow(inbox)
    _wa_text(inbox, ch, phone, "MENU")
    [main] = _wait_count(inbox, sandbox, phone, 1, "the main menu")
    # Three options: reply buttons, titles in the account's language (en by default).
    assert main["type"] == "interactive" and main["interactive"]["type"] == "button"
    assert main["interactive"]["body"]["text"] == "How can we help?"
    assert [b["reply"]["title"] for b in main["interactive"]["action"]["buttons"]] == [
        "Orders", "Billing", "Talk to a person"]
    orders_id = _button_ids(main)[0]
    assert orders_id == f"flow:{flow['id']}:main:orders"

    _wa_tap(inbox, ch, phone, orders_id, "Orders")
    orders = _wait_count(inbox, sandbox, phone, 2, "the orders sub-menu")[-1]
    # Four options: a list, with the author's button label and the row description.
    assert orders["interactive"]["type"] == "list"
    assert orders["interactive"]["action"]["button"] == "See options"
    rows = orders["interactive"]["action"]["sections"][0]["rows"]
    assert rows[0] == {"id": f"flow:{flow['id']}:orders:track", "title": "Track an order",
                       "description": "Where is my parcel?"}

    _wa_tap(inbox, ch, phone, rows[0]["id"], "Track an order", kind="list_reply")
    track = _wait_count(inbox, sandbox, phone, 3, "the third-level menu")[-1]
    assert track["interactive"]["body"]["text"] == "Did you order online or in a shop?"

    _wa_text(inbox, ch, phone, "online")          # typing an option's title picks it too
    ask = _wait_count(inbox, sandbox, phone, 4, "the question")[-1]
    assert ask["text"]["body"] == "What is your order number? (e.g. AB123456)"

    _wa_text(inbox, ch, phone, "my order is 1234")          # does not fit the pattern: asked again, once
    again = _wait_count(inbox, sandbox, phone, 5, "the question again")[-1]
    assert again["text"]["body"] == "That is not an order number: two capital letters and six digits, e.g. AB123456."

    _wa_text(inbox, ch, phone, "  XY654321 ")
    done = _wait_count(inbox, sandbox, phone, 6, "the confirmation")[-1]
    assert done["text"]["body"] == "Thanks! We are looking up order XY654321."

    thread = _thread(inbox)
    assert _profile(inbox, thread["contact_id"]) == {"order_number": "XY654321"}
    assert thread["handler"] == "bot"
    decisions = _decisions(inbox, thread["id"])
    assert [(d["responder"], d["outcome"]) for d in decisions] == [
        ("flow", "started"), ("flow", "acted"), ("flow", "acted"), ("flow", "acted"), ("flow", "reasked"),
        ("flow", "acted")]
    assert all(d["automation_id"] == flow["id"] for d in decisions)
    assert decisions[1]["actions"] == [{"type": "flow_answer", "step": "main", "option": "orders"},
                                       {"type": "flow_step", "step": "orders"}]
    assert decisions[-1]["actions"] == [{"type": "flow_answer", "step": "ask_order", "attribute": "order_number"},
                                        {"type": "flow_step", "step": "thanks"}]
    # The answers went through the send gate as automated messages, and the flow is over: the next message is
    # not read as an answer.
    sent = inbox.api("GET", f"/v1/messages/{decisions[-1]['sent_message_ids'][0]}").json
    assert sent["automated"] is True
    _wa_text(inbox, ch, phone, "1")
    wait_for(lambda: True, inbox)
    assert len(_to(sandbox, phone)) == 6


def _sms(inbox, sms, phone, body):
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": TWILIO_SID, "From": phone,
              "To": sms["external_id"], "Body": body, "NumMedia": "0", "SmsStatus": "received",
              "ApiVersion": "2010-04-01"}
    assert inbox.post_twilio(params).status_code == 200
    inbox.drain()


def test_the_same_flow_on_sms_numbered_options_then_a_hand_off_after_two_misses(client, sandbox):
    inbox = make_inbox(client)
    sms = _channel(inbox, "twilio", sandbox)
    phone = f"+34600{secrets.randbelow(10**6):06d}"
    _flow(inbox)
    with db.connection() as c:
        c.execute("UPDATE accounts SET default_language = 'es' WHERE id = %s", (inbox.account_id,))
    _sms(inbox, sms, phone, "menú")
    [main] = _wait_count(inbox, sandbox, phone, 1, "the numbered menu")
    assert main["Body"] == ("¿En qué te ayudamos?\n\n1. Pedidos\n2. Facturas\n3. Hablar con alguien\n\n"
                            "Responde con el número de tu opción.")
    _sms(inbox, sms, phone, "1")
    orders = _wait_count(inbox, sandbox, phone, 2, "the second level")[-1]["Body"]
    assert orders.startswith("Orders: what do you need?\n\n1. Track an order\n2. Return an item\n")
    _sms(inbox, sms, phone, "1.")
    assert _wait_count(inbox, sandbox, phone, 3, "the third level")[-1]["Body"].startswith(
        "Did you order online or in a shop?\n\n1. Online\n2. In a shop")
    _sms(inbox, sms, phone, "9")                                         # no option 9: asked again
    again = _wait_count(inbox, sandbox, phone, 4, "the menu again")[-1]["Body"]
    assert again.startswith("Perdona, no lo he entendido. Elige una de las opciones.\n\n"
                            "Did you order online or in a shop?\n\n1. Online")
    _sms(inbox, sms, phone, "the blue one")                              # a second miss: a person takes over
    wait_for(lambda: _thread(inbox)["handler"] == "human", inbox, what="the hand-off")
    thread = _thread(inbox)
    assert [d["outcome"] for d in _decisions(inbox, thread["id"])][-2:] == ["reasked", "handed_off"]
    # From then on the bot is silent, even on the flow's own trigger.
    _sms(inbox, sms, phone, "menú")
    wait_for(lambda: True, inbox)
    assert len(_to(sandbox, phone)) == 4
    # Resolving the thread gives it back to the bot: the menu works again.
    r = inbox.api("POST", f"/v1/threads/{thread['id']}/status", json={"status": "resolved"})
    assert r.status_code == 200 and _thread(inbox)["handler"] == "bot"
    _sms(inbox, sms, phone, "menú")
    assert _wait_count(inbox, sandbox, phone, 5, "the menu after resolution")[-1]["Body"].startswith(
        "¿En qué te ayudamos?")


def test_a_welcome_rule_starts_the_flow_and_the_hand_off_option_assigns_the_team(client, sandbox):
    inbox, ch, phone = _wa_setup(client, sandbox)
    flow = _flow(inbox)
    r = inbox.api("POST", "/v1/automations", json={
        "name": "welcome", "kind": "welcome", "priority": 1,
        "definition": {"actions": [{"type": "reply", "text": "Hi! I am the shop's assistant."},
                                   {"type": "flow", "name": "support-menu"}]}})
    assert r.status_code == 201, r.json
    _wa_text(inbox, ch, phone, "hello")
    welcome, main = _wait_count(inbox, sandbox, phone, 2, "the welcome and the menu")
    assert welcome["text"]["body"] == "Hi! I am the shop's assistant." and main["type"] == "interactive"
    thread = _thread(inbox)
    [decision] = _decisions(inbox, thread["id"])
    assert decision["rule_kind"] == "welcome" and decision["outcome"] == "acted"
    assert {"type": "flow", "name": "support-menu", "automation_id": flow["id"]} in decision["actions"]
    _wa_tap(inbox, ch, phone, _button_ids(main)[2], "Talk to a person")
    handed = _wait_count(inbox, sandbox, phone, 3, "the hand-off message")[-1]
    assert handed["text"]["body"] == "A person will answer you here shortly."
    thread = _thread(inbox)
    assert thread["handler"] == "human" and thread["team"]["name"] == "support"
    with db.connection() as c:
        types = [r["type"] for r in c.execute(
            "SELECT type FROM events WHERE account_id = %s AND subject_id = %s AND type LIKE 'thread.%%' ORDER BY id",
            (inbox.account_id, thread["id"]))]
    assert types[-2:] == ["thread.assigned", "thread.handed_off"]


def test_asking_for_a_person_mid_flow_hands_off_at_once_and_an_old_tap_still_counts(client, sandbox):
    inbox, ch, phone = _wa_setup(client, sandbox)
    _flow(inbox)
    _wa_text(inbox, ch, phone, "menu")
    [main] = _wait_count(inbox, sandbox, phone, 1, "the menu")
    _wa_text(inbox, ch, phone, "billing")
    assert _wait_count(inbox, sandbox, phone, 2, "the billing answer")[-1]["text"]["body"] == (
        "Invoices are in your account page.")
    # The flow ended; a tap on the first menu's button is still that menu's answer.
    _wa_tap(inbox, ch, phone, _button_ids(main)[0], "Orders")
    orders = _wait_count(inbox, sandbox, phone, 3, "the orders menu from an old tap")[-1]
    assert orders["interactive"]["type"] == "list"
    _wa_text(inbox, ch, phone, "I want to talk to a human please")
    wait_for(lambda: _thread(inbox)["handler"] == "human", inbox, what="the hand-off")
    assert _decisions(inbox, _thread(inbox)["id"])[-1]["reason"] == "customer_asked"


def test_messenger_menu_is_quick_replies_and_a_tap_moves_on(client, sandbox):
    inbox = make_inbox(client)
    page = _channel(inbox, "messenger", sandbox)
    psid = f"PSID-flow-{secrets.token_hex(4)}"
    flow = _flow(inbox)

    def say(body, **message):
        inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1, "messaging": [
            {"sender": {"id": psid}, "recipient": {"id": page["external_id"]}, "timestamp": int(time.time() * 1000),
             "message": {"mid": f"m_{secrets.token_hex(6)}", "text": body, **message}}]}]})
        inbox.drain()

    say("menu")
    [main] = _wait_count(inbox, sandbox, psid, 1, "the quick replies")
    assert main["message"]["text"] == "How can we help?"
    assert [q["payload"] for q in main["message"]["quick_replies"]] == [
        f"flow:{flow['id']}:main:{o}" for o in ("orders", "billing", "person")]
    say("Billing", quick_reply={"payload": f"flow:{flow['id']}:main:billing"})
    assert _wait_count(inbox, sandbox, psid, 2, "the answer")[-1]["message"]["text"] == (
        "Invoices are in your account page.")


def test_an_expired_flow_forgets_the_step(client, sandbox):
    inbox, ch, phone = _wa_setup(client, sandbox)
    _flow(inbox)
    _wa_text(inbox, ch, phone, "menu")
    _wait_count(inbox, sandbox, phone, 1, "the menu")
    with db.connection() as c:
        c.execute("UPDATE threads SET flow_at = now() - interval '2 days' WHERE account_id = %s", (inbox.account_id,))
    _wa_text(inbox, ch, phone, "2")      # a day later "2" is not an answer to yesterday's menu
    wait_for(lambda: True, inbox)
    assert len(_to(sandbox, phone)) == 1
    assert _thread(inbox)["handler"] == "bot"


# --- validation ------------------------------------------------------------------------------------------

def test_a_bad_flow_gets_422_listing_every_problem(client):
    inbox = make_inbox(client)
    bad = {"name": "broken", "kind": "flow", "definition": {
        "start": "main", "trigger": {"match": "regex", "pattern": "(unclosed"},
        "steps": {
            "main": {"type": "menu", "text": "Pick", "options": [
                {"id": "a", "title": "A title that is far too long for a button", "next": "nowhere"},
                {"id": "a", "title": "Again", "next": "loop1"}]},
            "loop1": {"type": "message", "text": "one", "next": "loop2"},
            "loop2": {"type": "message", "text": "two", "next": "loop1"},
            "ask": {"type": "question", "text": "?", "attribute": "x", "pattern": "[bad"},
            "odd": {"type": "dance"}}}}
    r = inbox.api("POST", "/v1/automations", json=bad)
    assert r.status_code == 422
    got = {(e["pointer"], e["detail"].split(":")[0]) for e in r.json["errors"]}
    assert got >= {
        ("/definition/trigger/pattern", "not a valid regular expression"),
        ("/definition/steps/main/options/0/title", "at most 20 characters"),
        ("/definition/steps/main/options/0/next", "required"),
        ("/definition/steps/main/options/1/id", "another option of this menu is 'a'"),
        ("/definition/steps/ask/pattern", "not a valid regular expression"),
        ("/definition/steps/odd/type", "required"),
        ("/definition/steps/ask", "unreachable"),
        ("/definition/steps/odd", "unreachable"),
    }, r.json["errors"]
    assert any(e["detail"].startswith("these message steps lead to each other") for e in r.json["errors"])
    assert inbox.api("GET", "/v1/automations").json["data"] == []
    # A rule starting a flow that does not exist is refused too.
    r = inbox.api("POST", "/v1/automations", json={"name": "w", "kind": "welcome", "definition": {
        "actions": [{"type": "flow", "name": "no-such-flow"}, {"type": "assign", "team": ""}]}})
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json["errors"]} == {"/definition/actions/0/name", "/definition/actions/1/team"}


def test_cli_validate_sees_flows_in_other_files(tmp_path):
    import json
    import subprocess
    import sys
    (tmp_path / "flow.json").write_text(json.dumps(SUPPORT_FLOW))
    (tmp_path / "welcome.json").write_text(json.dumps({"name": "welcome", "kind": "welcome", "definition": {
        "actions": [{"type": "flow", "name": "support-menu"}]}}))
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "automations", "validate", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 rule(s): all valid" in out.stdout


# --- rendering and reading (pure) ------------------------------------------------------------------------

MENU = SUPPORT_FLOW["definition"]["steps"]["main"]
ALL_KINDS = frozenset({"text", "interactive"})


@pytest.mark.parametrize("channel,kinds,want", [
    ("whatsapp", ALL_KINDS, ("interactive", "button")),
    ("messenger", ALL_KINDS, ("interactive", "button")),
    ("instagram", ALL_KINDS, ("interactive", "button")),
    ("twilio", frozenset({"text"}), ("text", None)),
])
def test_a_menu_per_channel(channel, kinds, want):
    kind, content = flows.render_menu(channel, kinds, "F", "main", MENU, ["es"], {})
    assert (kind, content.get("type")) == want
    if kind == "text":
        assert "1. Pedidos" in content["body"]


def test_typed_answers_pick_by_number_title_or_id():
    assert flows.chosen_option(MENU, "2")["id"] == "billing"
    assert flows.chosen_option(MENU, " 3) ")["id"] == "person"
    assert flows.chosen_option(MENU, "nº 1")["id"] == "orders"
    assert flows.chosen_option(MENU, "¡FACTURAS!")["id"] == "billing"
    assert flows.chosen_option(MENU, "orders")["id"] == "orders"
    assert flows.chosen_option(MENU, "4") is None and flows.chosen_option(MENU, "0") is None
    assert flows.chosen_option(MENU, "orders please") is None
    step = SUPPORT_FLOW["definition"]["steps"]["ask_order"]
    assert flows.valid_answer(step, " AB123456\n") == "AB123456"
    assert flows.valid_answer(step, "ab123456") is None and flows.valid_answer(step, "AB1234567") is None
    assert flows.parse_payload("flow:abc:main:orders") == ("abc", "main", "orders")
    assert flows.parse_payload("survey:csat:5") is None and flows.parse_payload("flow:x:y") is None

"""The inbox and thread pages, server side, with the Flask test client: the filters become the API's parameters,
a form with errors comes back with them and sends nothing, a POST without the CSRF token is refused, and reading
a thread in the console is an audited read like any other. The data comes from a real customer writing through
the sandbox to the live gateway (the same database this client serves)."""
from __future__ import annotations

import re
import secrets

import pytest

from gateway.console.api_client import Reply
from gateway.console.inbox_views import refusal_text, template_layout, template_parameters
from tests.console.conftest import World, csrf_of as _csrf, session_in


def _phone() -> str:
    return f"+3461{secrets.randbelow(10**7):07d}"


def _sign_in(client, user: dict) -> str:
    return session_in(client, user)


def _thread_of(world: World, phone: str, text: str, name: str) -> dict:
    world.say(phone, text, name=name)
    found = world.wait_api("/v1/threads?limit=200", lambda b: any(t["contact"]["phone"] == phone for t in b["data"]),
                           what=f"the thread of {name}")
    return next(t for t in found["data"] if t["contact"]["phone"] == phone)


@pytest.fixture
def two_threads(world):
    """Ana's thread, assigned to the console agent, and Bruno's, unassigned in the team 'Ventas'."""
    ana = _thread_of(world, _phone(), "Hola, ¿mi pedido?", "Ana Ruiz")
    bruno = _thread_of(world, _phone(), "Quiero cambiar la talla", "Bruno Díaz")
    status, team = world.api("POST", "/v1/teams", {"name": "Ventas"})
    assert status == 201, team
    status, body = world.api("POST", f"/v1/threads/{ana['id']}/assign",
                             {"agent_id": str(world.users["agent"]["agent_id"])})
    assert status == 200, body
    status, body = world.api("POST", f"/v1/threads/{bruno['id']}/assign", {"team_id": team["id"]})
    assert status == 200, body
    return world, ana, bruno, team


def _listed(client, query: str = "") -> set[str]:
    r = client.get("/console/inbox" + query)
    assert r.status_code == 200, r.get_data(as_text=True)[:800]
    return set(re.findall(r'data-thread="([0-9a-f-]{36})"', r.get_data(as_text=True)))


def test_inbox_filters_become_the_api_parameters(app, client, two_threads):
    world, ana, bruno, team = two_threads
    admin = app.test_client()
    _sign_in(admin, world.users["admin"])
    assert _listed(admin) == {ana["id"], bruno["id"]}
    assert _listed(admin, "?assignee=mine") == set()            # the admin's own agent has nothing
    _sign_in(client, world.users["agent"])
    assert _listed(client, "?assignee=mine") == {ana["id"]}       # assignee=<the agent's id>
    assert _listed(client, "?assignee=none") == {bruno["id"]}     # assignee=none
    assert _listed(client, f"?team_id={team['id']}") == {bruno["id"]}
    assert _listed(client, "?status=open") == {ana["id"], bruno["id"]}
    assert _listed(client, "?status=resolved") == set()
    assert _listed(client, f"?channel_id={world.channel['id']}") == {ana["id"], bruno["id"]}
    assert _listed(client, "?window=open") == {ana["id"], bruno["id"]}
    assert _listed(client, "?window=closed") == set()
    assert _listed(client, "?sort=waiting&assignee=none") == {bruno["id"]}
    page = client.get("/console/inbox").get_data(as_text=True)
    assert "Ana Ruiz" in page and "Bruno Díaz" in page and "¿mi pedido?" in page
    assert 'data-live' in page and 'data-live-poll="/console/updates"' in page
    # An agent cannot list teams (admin scope): the filter offers the teams of the threads shown.
    assert f'<option value="{team["id"]}">Ventas</option>' in page
    bad = client.get("/console/inbox?status=bogus")
    assert bad.status_code == 400 and "status is one or more of" in bad.get_data(as_text=True)


def test_an_empty_reply_comes_back_with_its_error_and_sends_nothing(client, world):
    thread = _thread_of(world, _phone(), "¿Hay alguien?", "Carla Soto")
    token = _sign_in(client, world.users["agent"])
    r = client.post(f"/console/threads/{thread['id']}/reply", data={"csrf_token": token, "body": "   "})
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert 'aria-invalid="true" aria-describedby="reply-body-error"' in html
    assert 'id="reply-body-error">Type the message to send.</p>' in html
    note = client.post(f"/console/threads/{thread['id']}/notes", data={"csrf_token": token, "body": ""})
    assert note.status_code == 400 and 'id="note-error">Write the note.</p>' in note.get_data(as_text=True)
    status, after = world.api("GET", f"/v1/threads/{thread['id']}")
    assert status == 200 and after["message_count"] == 1 and after["last_outbound_at"] is None
    status, notes = world.api("GET", f"/v1/threads/{thread['id']}/notes")
    assert notes["data"] == []


def test_a_form_without_the_csrf_token_is_refused(client, world):
    thread = _thread_of(world, _phone(), "Hola", "Diego Paz")
    _sign_in(client, world.users["agent"])
    r = client.post(f"/console/threads/{thread['id']}/reply", data={"body": "Buenos días"})
    assert r.status_code == 400 and "reload the page" in r.get_data(as_text=True)
    r = client.post(f"/console/threads/{thread['id']}/reply", data={"body": "Buenos días", "csrf_token": "forged"})
    assert r.status_code == 400
    status, after = world.api("GET", f"/v1/threads/{thread['id']}")
    assert after["message_count"] == 1 and after["last_outbound_at"] is None


def test_reading_a_thread_in_the_console_is_an_audited_read(client, world):
    thread = _thread_of(world, _phone(), "Necesito la factura", "Elena Vidal")
    assert thread["unread_count"] == 1
    agent = world.users["agent"]
    _sign_in(client, agent)
    page = client.get(f"/console/threads/{thread['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Necesito la factura" in html and "Elena Vidal" in html
    status, audit = world.api("GET", f"/v1/audit?action=read:*&actor=user:{agent['id']}&limit=200")
    assert status == 200, audit
    reads = {(e["action"], e["target_id"]) for e in audit["data"]}
    assert ("read:/v1/threads/<thread_id>", thread["id"]) in reads
    assert ("read:/v1/threads/<thread_id>/messages", thread["id"]) in reads
    status, after = world.api("GET", f"/v1/threads/{thread['id']}")
    assert after["unread_count"] == 0   # opening it marked it read


def test_a_thread_of_another_account_is_not_found(client, world, live):
    thread = _thread_of(world, _phone(), "Privado", "Fede Gil")
    other = World(live, "other")
    _sign_in(client, other.users["supervisor"])
    r = client.get(f"/console/threads/{thread['id']}")
    html = r.get_data(as_text=True)
    assert r.status_code == 404 and "Privado" not in html and "Fede Gil" not in html
    token = _csrf(client.get("/console/inbox").get_data(as_text=True))
    r = client.post(f"/console/threads/{thread['id']}/reply", data={"csrf_token": token, "body": "hola"})
    assert r.status_code == 404


# --- the template picker and the gate's refusal, without a server ---------------------------------------

DEFINITION = {"name": "pedido_listo", "language": "es", "category": "UTILITY", "components": [
    {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}", "example": {"header_text": ["A-1"]}},
    {"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} está listo.", "example": {"body_text": [["Ana", "A-1"]]}},
    {"type": "FOOTER", "text": "Tienda Sol"},
    {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Ver", "url": "https://tienda.example/p/{{1}}",
                                     "example": ["https://tienda.example/p/A-1"]},
                                    {"type": "QUICK_REPLY", "text": "Gracias"}]}]}


def test_a_template_gets_one_field_per_parameter_and_its_values_become_parameters():
    layout = template_layout(DEFINITION)
    assert [(s["slot"], s["example"]) for s in layout["slots"]] == [
        ("header.1", "A-1"), ("body.1", "Ana"), ("body.2", "A-1"), ("button.0", "")]
    values = {"header.1": "B-7", "body.1": "Luis", "body.2": "B-7", "button.0": "B-7"}
    assert template_parameters(layout, values) == {"header": "B-7", "body": ["Luis", "B-7"], "buttons": {"0": "B-7"}}
    named = {"name": "hola", "language": "es", "parameter_format": "NAMED", "components": [
        {"type": "BODY", "text": "Hola {{first_name}}",
         "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}}]}
    assert template_parameters(template_layout(named), {"body.first_name": "Zoe"}) == {"body": {"first_name": "Zoe"}}


def test_the_gate_refusal_says_when_the_window_closed_and_what_to_do():
    closed = Reply(422, {"type": "https://gateway.invalid/problems/outside_customer_service_window",
                         "detail": "free-form messages can only be sent within 24 hours of the customer's last "
                                   "message; send an approved template instead",
                         "window_closed_at": "2026-03-01T14:02:00+00:00"})
    assert refusal_text(closed) == ("Not sent: the 24-hour window closed at 2026-03-01 14:02 UTC — send an approved "
                                    "template instead.")
    opted_out = Reply(403, {"type": "https://gateway.invalid/problems/opted_out",
                            "detail": "the contact opted out of every message on whatsapp"})
    assert refusal_text(opted_out) == "Not sent: The contact opted out of every message on whatsapp."


def test_a_reply_form_submitted_twice_sends_once(client, world):
    """A double click, or the browser resubmitting the form: the form's idempotency key goes to the API as
    Idempotency-Key, which answers the repeat with the first answer."""
    thread = _thread_of(world, _phone(), "¿Abrís mañana?", "Carla Sanz")
    csrf = _sign_in(client, world.users["agent"])
    page = client.get(f"/console/threads/{thread['id']}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)
    form = {"csrf_token": csrf, "idempotency_key": key, "body": "Sí, de 10 a 14"}
    for _ in range(2):
        r = client.post(f"/console/threads/{thread['id']}/reply", data=form)
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
    status, listed = world.api("GET", f"/v1/threads/{thread['id']}/messages?limit=50")
    assert status == 200
    assert [m["direction"] for m in listed["data"]].count("outbound") == 1

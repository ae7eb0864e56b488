"""The inbox and a thread in a real browser (Debian's Chromium through Playwright) against the live gateway with
its workers and the sandbox provider: a customer's message appears without reloading, a reply goes sent →
delivered → read before the agent's eyes, a closed window turns the reply box into a template picker and the gate's
refusal is shown in words, assign + note + resolve sends the CSAT survey, and another account's thread is not
found."""
from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request

from playwright.sync_api import expect

from tests.console.conftest import World, sign_in

WAIT = 20_000   # ms: statuses go through the worker, the sandbox and its signed webhooks on a busy 2-core machine

TEMPLATE = {"name": "pedido_listo", "language": "es", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} está listo para recoger.",
                            "example": {"body_text": [["Ana", "A-1001"]]}},
                           {"type": "FOOTER", "text": "Tienda Sol"}]}


def _phone() -> str:
    return f"+3462{secrets.randbelow(10**7):07d}"


def _thread_of(world: World, phone: str, text: str, name: str = "Lucía Gómez") -> dict:
    world.say(phone, text, name=name)
    found = world.wait_api("/v1/threads?limit=200", lambda b: any(t["contact"]["phone"] == phone for t in b["data"]),
                           what=f"the thread of {name}")
    return next(t for t in found["data"] if t["contact"]["phone"] == phone)


def _stay_marker(page) -> None:
    """A flag in this document: still there later proves the page was updated in place, never reloaded."""
    page.evaluate("window.__stayed = true")


def _stayed(page) -> bool:
    return page.evaluate("window.__stayed === true")


def _live_ready(page) -> None:
    # The poll's first answer is the feed's head: what happens after it shows up as a change.
    page.wait_for_function("document.body.getAttribute('data-live-cursor')", timeout=WAIT)


def _fits_a_phone(page) -> None:
    """At 360 px wide the page scrolls only downwards: nothing sticks out sideways."""
    page.set_viewport_size({"width": 360, "height": 780})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def _sandbox_messages(live, phone: str) -> list[dict]:
    digits = phone.lstrip("+")
    with urllib.request.urlopen(f"{live.sandbox_url}/_sandbox/messages?recipient={digits}", timeout=10) as r:
        return json.loads(r.read())["messages"]


def test_a_customer_message_appears_in_the_open_inbox(page, live, world, shots):
    _thread_of(world, _phone(), "Buenas, ¿abrís el domingo?", name="Marta Ríos")
    sign_in(page, live, world.users["agent"])
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator("#thread-list")).to_contain_text("Marta Ríos")
    _live_ready(page)
    _stay_marker(page)

    world.say(_phone(), "Hola, ¿tenéis la talla M del abrigo azul?", name="Lucía Gómez")

    row = page.locator("#thread-list tr", has_text="Lucía Gómez")
    expect(row).to_contain_text("talla M del abrigo azul", timeout=WAIT)
    expect(row.locator(".badge.count")).to_have_text("1")
    expect(row).to_contain_text("open")
    assert _stayed(page), "the inbox reloaded instead of updating in place"
    page.screenshot(path=shots / "inbox.png", full_page=True)
    _fits_a_phone(page)


def test_a_reply_inside_the_window_goes_sent_delivered_read_in_the_page(page, live, world, shots):
    phone = _phone()
    thread = _thread_of(world, phone, "¿Cuándo llega mi pedido A-1001?")
    sign_in(page, live, world.users["agent"], next_path=f"/console/threads/{thread['id']}")
    expect(page.locator("#window-state")).to_contain_text("The 24-hour window is open")
    page.get_by_label("Message", exact=True).fill("Llega mañana antes de las 14:00. ¡Gracias por esperar!")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("Message queued")
    _stay_marker(page)
    # Every status the reply shows, as the page's live updates swap the conversation in place.
    page.evaluate("""() => {
      window.__seen = [];
      const note = () => {
        const b = [...document.querySelectorAll('#conversation .bubble.out')]
          .find(e => e.textContent.includes('Llega mañana'));
        const s = b && b.getAttribute('data-status');
        if (s && window.__seen[window.__seen.length - 1] !== s) { window.__seen.push(s); }
      };
      note();
      new MutationObserver(note).observe(document.getElementById('conversation'), {childList: true, subtree: true});
    }""")
    bubble = page.locator("#conversation .bubble.out", has_text="Llega mañana")
    expect(bubble.locator(".msg-status")).to_contain_text("Read", timeout=WAIT)
    seen = page.evaluate("window.__seen")
    assert _stayed(page), "the thread reloaded instead of updating in place"
    assert seen[-1] == "read" and len(seen) >= 2, f"the page did not show the statuses change live: {seen}"
    assert bubble.get_attribute("data-status") == "read"
    bubble.get_by_text("Status history").click()
    for word in ("Sent", "Delivered", "Read"):
        expect(bubble.locator(".history")).to_contain_text(word)
    sent = [m for m in _sandbox_messages(live, phone) if m["body"].get("type") == "text"]
    assert [m["body"]["text"]["body"] for m in sent] == ["Llega mañana antes de las 14:00. ¡Gracias por esperar!"]
    # The customer answers: the new message joins the open conversation in place too.
    world.say(phone, "¡Perfecto, allí estaré!")
    expect(page.locator("#conversation .bubble.in", has_text="allí estaré")).to_be_visible(timeout=WAIT)
    assert _stayed(page)
    expect(bubble.locator("details.history")).to_have_attribute("open", "")   # kept open across the redraw
    page.screenshot(path=shots / "thread.png", full_page=True)
    _fits_a_phone(page)


def _close_window(world: World, thread_id: str) -> None:
    """The customer's last message becomes 25 hours old. Waiting a day is not an option in a test, so time moves
    in PostgreSQL: the send gate and the thread's window read threads.last_inbound_at, nothing else."""
    from gateway import db
    with db.connection() as conn:
        conn.execute("UPDATE threads SET last_inbound_at = last_inbound_at - interval '25 hours', "
                     "last_activity_at = last_activity_at - interval '25 hours' WHERE account_id = %s AND id = %s",
                     (world.id, thread_id))


def test_a_closed_window_offers_templates_and_shows_the_gate_refusal(page, live, world):
    status, body = world.api("POST", "/v1/templates", {"channel_id": world.channel["id"], **TEMPLATE})
    assert status == 201 and body["template"]["status"] == "APPROVED", body   # the sandbox approves at once
    phone = _phone()
    thread = _thread_of(world, phone, "Hola, ¿está listo mi pedido?")
    sign_in(page, live, world.users["agent"], next_path=f"/console/threads/{thread['id']}")
    reply_box = page.get_by_label("Message", exact=True)
    expect(reply_box).to_be_visible()   # the page was opened while the window was open

    _close_window(world, thread["id"])
    # The free-text form from before still sits in the page: sent now, the gate refuses it and says why.
    reply_box.fill("¿Sigues ahí? Ya lo tenemos.")
    page.get_by_role("button", name="Send", exact=True).click()
    refusal = page.locator("#reply-refusal")
    expect(refusal).to_contain_text(re.compile(r"the 24-hour window closed at \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(refusal).to_contain_text("send an approved template instead")
    expect(page.get_by_label("Message", exact=True)).to_have_value("¿Sigues ahí? Ya lo tenemos.")
    status, after = world.api("GET", f"/v1/threads/{thread['id']}")
    assert after["message_count"] == 1 and after["last_outbound_at"] is None   # nothing was sent

    # Opened afresh, the reply box offers only templates.
    page.goto(f"{live.url}/console/threads/{thread['id']}")
    expect(page.locator("#window-state")).to_contain_text("The 24-hour window closed at")
    expect(page.get_by_label("Message", exact=True)).to_have_count(0)
    page.get_by_label("Template", exact=True).select_option("pedido_listo|es")
    page.get_by_role("button", name="Use this template").click()
    preview = page.locator("#template-preview")
    expect(preview).to_contain_text("Hola {{1}}, tu pedido {{2}} está listo")
    page.get_by_label("Body {{1}}").fill("Lucía")
    expect(preview).to_contain_text("Hola Lucía, tu pedido {{2}} está listo")   # filled in as she types
    page.get_by_label("Body {{2}}").fill("A-1001")
    expect(preview).to_contain_text("Hola Lucía, tu pedido A-1001 está listo para recoger.")
    page.get_by_role("button", name="Preview").click()   # the server's preview, through the API
    expect(page.locator("#template-preview")).to_contain_text("Hola Lucía, tu pedido A-1001 está listo para recoger.")
    expect(page.locator("#template-preview")).to_contain_text("Tienda Sol")
    expect(page.get_by_label("Body {{2}}")).to_have_value("A-1001")
    page.get_by_role("button", name="Send template").click()
    expect(page.locator(".flash.ok")).to_contain_text("Template “pedido_listo” queued")
    bubble = page.locator("#conversation .bubble.out", has_text="Hola Lucía, tu pedido A-1001")
    expect(bubble).to_contain_text("Template pedido_listo (es)")
    expect(bubble.locator(".msg-status")).to_contain_text(re.compile("Sent|Delivered|Read"), timeout=WAIT)
    sent = [m["body"] for m in _sandbox_messages(live, phone) if m["body"].get("type") == "template"]
    assert [b["template"]["name"] for b in sent] == ["pedido_listo"]


def test_assign_note_and_resolve_sends_the_csat_survey(page, live, world):
    status, body = world.api("PUT", "/v1/surveys/config", {"kind": "csat", "enabled": True,
                                                           "questions": {"es": "¿Qué tal te atendimos hoy?"}})
    assert status == 200, body
    phone = _phone()
    thread = _thread_of(world, phone, "Ya me llegó, gracias")
    agent = world.users["agent"]
    sign_in(page, live, agent, next_path=f"/console/threads/{thread['id']}")

    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator(".flash.ok")).to_contain_text("Assigned to you")
    expect(page.locator("#thread-assignee")).to_have_text(agent["name"])

    page.get_by_label("Note", exact=True).fill("Cliente VIP: revisar el envío de la semana que viene")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#conversation .bubble.note")).to_contain_text("Cliente VIP")

    started = time.monotonic()
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#thread-status")).to_have_text("resolved")
    expect(page.locator(".flash.ok")).to_contain_text("The satisfaction survey was sent")
    # The survey reaches the customer (the sandbox received it) and shows in the conversation.
    while time.monotonic() - started < WAIT / 1000:
        surveys = [m["body"] for m in _sandbox_messages(live, phone) if m["body"].get("type") == "interactive"]
        if surveys:
            break
        time.sleep(0.2)
    assert surveys and surveys[0]["interactive"]["body"]["text"] == "¿Qué tal te atendimos hoy?", surveys
    expect(page.locator("#conversation .bubble.out", has_text="¿Qué tal te atendimos hoy?")).to_be_visible(
        timeout=WAIT)
    status, now = world.api("GET", f"/v1/threads/{thread['id']}")
    assert now["status"] == "resolved" and now["assignee"]["id"] == str(agent["agent_id"])


def test_a_user_of_another_account_cannot_open_the_thread(page, live, world):
    thread = _thread_of(world, _phone(), "Mi dirección es Calle Mayor 1")
    other = World(live, "other")
    sign_in(page, live, other.users["supervisor"])
    response = page.goto(f"{live.url}/console/threads/{thread['id']}")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Calle Mayor")
    expect(page.locator("main")).not_to_contain_text("Lucía")

"""The contact pages: the list and its filters, the 360° page (timeline, identities, typed attributes, tags,
consent with its proof), and the supervisor's export and erasure; in Chromium against the live gateway with the
sandbox, and server side with the Flask test client (which serves the same database).

Customers write through the sandbox (a signed webhook), so every contact here is made the way a real one is."""
from __future__ import annotations

import html
import json
import re
import secrets
from urllib.parse import quote

import pytest

from tests.console.conftest import World, session_in, sign_in


def _phone() -> str:
    return f"+3462{secrets.randbelow(10**7):07d}"


def _sign_in(client, user: dict) -> str:
    return session_in(client, user, next_path="/console/contacts")


def _customer(world: World, text: str, name: str, phone: str | None = None) -> dict:
    """A customer writes ``text``; their contact as the API shows it once the worker has stored it."""
    phone = phone or _phone()
    world.say(phone, text, name=name)
    found = world.wait_api(f"/v1/contacts?phone={quote(phone)}", lambda b: bool(b["data"]) and b["data"][0]["threads"],
                           what=f"the contact of {name}")
    return found["data"][0] | {"phone": phone}


def _define(world: World, name: str, type_: str, label: str) -> None:
    status, body = world.api("POST", "/v1/attribute-definitions", {"name": name, "type": type_, "label": label})
    assert status == 201, body


def _get(client, path: str, status: int = 200) -> str:
    r = client.get(path)
    text = r.get_data(as_text=True)
    assert r.status_code == status, text[:1500]
    return html.unescape(text)


# --- in the browser ----------------------------------------------------------------------------------------------

def test_a_supervisor_reads_edits_exports_and_erases_a_contact(live, page, world, shots):
    from playwright.sync_api import expect
    _define(world, "orders", "number", "Orders")
    lucia = _customer(world, "Hola, ¿dónde está mi pedido 4471?", "Lucía Gómez")
    thread_id = lucia["threads"][0]["id"]
    # The business answers, an agent leaves a note and she agrees to offers: the timeline's other kinds.
    status, sent = world.api("POST", "/v1/messages", {"channel_id": world.channel["id"], "contact_id": lucia["id"],
                                                      "type": "text", "text": {"body": "Sale mañana por la mañana."}})
    assert status in (201, 202), sent
    assert world.api("POST", f"/v1/threads/{thread_id}/notes", {"body": "Cliente habitual; revisar envío"})[0] == 201
    assert world.api("POST", f"/v1/contacts/{lucia['id']}/consents", {
        "channel_kind": "whatsapp", "purpose": "marketing", "action": "granted", "source": "web_form",
        "proof": {"text": "Acepto recibir ofertas", "text_version": "v1"}})[0] == 201
    sign_in(page, live, world.users["supervisor"], next_path=f"/console/contacts/{lucia['id']}")
    expect(page.get_by_role("heading", name="Lucía Gómez")).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("¿dónde está mi pedido 4471?", timeout=20000)
    expect(timeline).to_contain_text("Cliente habitual; revisar envío")
    expect(timeline).to_contain_text("Consent granted")
    expect(timeline).to_contain_text("Outgoing message delivered", timeout=20000)   # live: the status arrives meanwhile
    expect(timeline).to_contain_text("whatsapp")
    expect(page.locator("#ident-h + dl")).to_contain_text(lucia["phone"])
    page.screenshot(path=shots / "contact.png", full_page=True)

    page.get_by_label("Orders (number)").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved: orders")
    status, stored = world.api("GET", f"/v1/contacts/{lucia['id']}")
    assert status == 200 and stored["profile"]["orders"] == 3

    with page.expect_download() as download:
        page.get_by_role("link", name="Export data (JSON)").click()
    document = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert document["contact"]["id"] == lucia["id"] and document["contact"]["name"] == "Lucía Gómez"
    assert download.value.suggested_filename == f"contact-{lucia['id']}.json"

    page.get_by_role("link", name="Erase contact…").click()
    expect(page.get_by_role("heading", name="Erase Lucía Gómez?")).to_be_visible()
    counts = page.locator("table.counts")
    for what, n in (("messages", 2), ("conversation threads", 1), ("internal notes", 1), ("identities", 1),
                    ("consent events", 1)):
        expect(counts.get_by_role("row", name=re.compile(rf"^{what}\b.* {n}$"))).to_be_visible()
    page.get_by_label(re.compile("To confirm, type")).fill("not her")
    page.get_by_role("button", name="Erase permanently").click()
    expect(page.get_by_role("alert")).to_contain_text("does not match")
    page.get_by_label(re.compile("To confirm, type")).fill(lucia["phone"])
    page.get_by_role("button", name="Erase permanently").click()
    expect(page.get_by_role("heading", name="Contact erased")).to_be_visible()
    expect(page.locator("main table")).to_contain_text("conversation threads")
    assert world.api("GET", f"/v1/contacts/{lucia['id']}")[0] == 404
    assert world.api("GET", f"/v1/threads/{thread_id}")[0] == 404


def test_an_agent_sees_no_export_or_erase_and_gets_403_at_their_urls(live, page, world):
    from playwright.sync_api import expect
    bruno = _customer(world, "Quiero darme de baja", "Bruno Díaz")
    sign_in(page, live, world.users["agent"], next_path=f"/console/contacts/{bruno['id']}")
    expect(page.locator("#timeline")).to_contain_text("Quiero darme de baja", timeout=20000)
    expect(page.get_by_role("link", name="Export data (JSON)")).to_have_count(0)
    expect(page.get_by_role("link", name="Erase contact…")).to_have_count(0)
    expect(page.get_by_role("button", name="Record")).to_have_count(0)
    for action in ("export", "erase"):
        answer = page.goto(f"{live.url}/console/contacts/{bruno['id']}/{action}")
        assert answer.status == 403
        expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    assert world.api("GET", f"/v1/contacts/{bruno['id']}")[0] == 200


# --- server side -------------------------------------------------------------------------------------------------

def test_the_list_filters_by_phone_tag_channel_and_activity(client, world):
    ana = _customer(world, "Hola", "Ana Ruiz")
    carlos = _customer(world, "Buenas", "Carlos Pino")
    assert world.api("PATCH", f"/v1/contacts/{carlos['id']}", {"tags_add": ["vip"]})[0] == 200
    _sign_in(client, world.users["agent"])
    listed = _get(client, "/console/contacts")
    assert "Ana Ruiz" in listed and "Carlos Pino" in listed and f'href="/console/contacts/{ana["id"]}"' in listed
    by_phone = _get(client, "/console/contacts?" + f"phone={quote(ana['phone'])}")
    assert "Ana Ruiz" in by_phone and "Carlos Pino" not in by_phone
    by_tag = _get(client, "/console/contacts?tag=vip")
    assert "Carlos Pino" in by_tag and "Ana Ruiz" not in by_tag
    assert "Ana Ruiz" in _get(client, "/console/contacts?channel_kind=whatsapp")
    assert "Ana Ruiz" not in _get(client, "/console/contacts?channel_kind=messenger")
    assert "Ana Ruiz" not in _get(client, "/console/contacts?active_before=2020-01-01")
    bad = _get(client, "/console/contacts?active_after=yesterday", 400)
    assert 'id="f-after" name="active_after" type="date" value="yesterday" aria-invalid="true"' in bad
    assert "Enter a date as YYYY-MM-DD." in bad


def test_the_contact_page_shows_identities_attributes_threads_and_consent_with_proof(client, world):
    _define(world, "plan", "string", "Plan")
    elena = _customer(world, "Necesito la factura de marzo", "Elena Vidal")
    assert world.api("PATCH", f"/v1/contacts/{elena['id']}", {"attributes": {"plan": "gold", "source": "crm"},
                                                             "tags_add": ["factura"]})[0] == 200
    status, event = world.api("POST", f"/v1/contacts/{elena['id']}/consents", {
        "channel_kind": "whatsapp", "purpose": "marketing", "action": "granted", "source": "web_form",
        "proof": {"text": "Acepto recibir ofertas por WhatsApp", "text_version": "v3"}})
    assert status == 201, event
    _sign_in(client, world.users["supervisor"])
    text = _get(client, f"/console/contacts/{elena['id']}")
    assert "Necesito la factura de marzo" in text and "Customer" in text
    assert f"<dd>{elena['phone']}" in text and "WhatsApp · SMS" in text
    assert 'name="attr.plan" type="text" value="gold"' in text
    assert "<dt>source</dt><dd>crm</dd>" in text                      # an attribute without a definition
    assert f'href="/console/threads/{elena["threads"][0]["id"]}"' in text
    assert "Acepto recibir ofertas por WhatsApp" in text and "v3" in text
    assert "Consent granted" in text                                   # the grant in the timeline
    gate = re.search(r"<caption>What the send gate allows now</caption>.*?</table>", text, re.S).group(0)
    assert "allowed" in gate
    assert "Export data (JSON)" in text and "Erase contact…" in text
    consent_only = _get(client, f"/console/contacts/{elena['id']}?kinds=consent")
    timeline = re.search(r'<div id="timeline" data-live>.*?</div>\s*</section>', consent_only, re.S).group(0)
    assert "Consent granted" in timeline and "Necesito la factura" not in timeline
    assert 'id="k-consent" name="kinds" value="consent" checked' in consent_only


def test_a_wrong_attribute_type_comes_back_with_the_field_error_and_saves_nothing(client, world):
    _define(world, "orders", "number", "Orders")
    _define(world, "birthday", "date", "Birthday")
    pablo = _customer(world, "Hola", "Pablo Sanz")
    token = _sign_in(client, world.users["agent"])
    r = client.post(f"/console/contacts/{pablo['id']}/attributes", data={
        "csrf_token": token, "name": "Pablo Sanz", "language": "", "attr.orders": "many", "attr.birthday": "1990-05-17"})
    text = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422, text[:1500]
    field = re.search(r'<input id="(attr-\d+)" name="attr.orders" type="text" value="many"[^>]*>', text)
    assert field and 'aria-invalid="true"' in field.group(0)
    error = re.search(r'<p class="field-error" id="' + field.group(1) + r'-error">(.*?)</p>', text).group(1)
    assert "number" in error
    assert 'name="attr.birthday" type="text" value="1990-05-17"' in text   # what was typed stays
    assert "Nothing was saved" in text
    status, stored = world.api("GET", f"/v1/contacts/{pablo['id']}")
    assert "orders" not in stored["profile"] and "birthday" not in stored["profile"]
    r = client.post(f"/console/contacts/{pablo['id']}/attributes", data={
        "csrf_token": token, "name": "Pablo Sanz", "language": "es", "attr.orders": "12", "attr.birthday": ""})
    assert r.status_code == 302
    status, stored = world.api("GET", f"/v1/contacts/{pablo['id']}")
    assert stored["profile"] == {"orders": 12} and stored["language"] == "es"


def test_tags_are_added_and_removed(client, world):
    rosa = _customer(world, "Hola", "Rosa Martín")
    token = _sign_in(client, world.users["agent"])
    assert client.post(f"/console/contacts/{rosa['id']}/tags", data={"csrf_token": token,
                                                                    "add": "vip, madrid"}).status_code == 302
    assert world.api("GET", f"/v1/contacts/{rosa['id']}")[1]["tags"] == ["madrid", "vip"]
    assert client.post(f"/console/contacts/{rosa['id']}/tags", data={"csrf_token": token,
                                                                    "remove": "vip"}).status_code == 302
    assert world.api("GET", f"/v1/contacts/{rosa['id']}")[1]["tags"] == ["madrid"]
    r = client.post(f"/console/contacts/{rosa['id']}/tags", data={"csrf_token": token, "add": ""})
    assert r.status_code == 400 and 'id="t-add-error"' in r.get_data(as_text=True)
    assert client.post(f"/console/contacts/{rosa['id']}/tags", data={"add": "x"}).status_code == 400   # no CSRF


def test_a_supervisor_records_consent_and_a_grant_without_proof_is_refused(client, world):
    marta = _customer(world, "Hola", "Marta León")
    token = _sign_in(client, world.users["supervisor"])
    r = client.post(f"/console/contacts/{marta['id']}/consents", data={
        "csrf_token": token, "action": "granted", "purpose": "marketing", "channel_kind": "whatsapp",
        "source": "agent", "occurred_at": "", "proof.text": "", "proof.text_version": ""})
    text = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422, text[:1500]
    assert re.search(r'id="c-proof-text" name="proof.text" aria-invalid="true"', text)
    assert "a grant needs proof" in text and "Nothing was recorded" in text
    assert world.api("GET", f"/v1/contacts/{marta['id']}/consents")[1]["history"] == []
    r = client.post(f"/console/contacts/{marta['id']}/consents", data={
        "csrf_token": token, "action": "granted", "purpose": "marketing", "channel_kind": "whatsapp",
        "source": "agent", "occurred_at": "2026-01-10T09:30", "proof.text": "Sí, quiero ofertas",
        "proof.text_version": "tienda-2026"})
    assert r.status_code == 302, r.get_data(as_text=True)[:1500]
    history = world.api("GET", f"/v1/contacts/{marta['id']}/consents")[1]["history"]
    assert len(history) == 1 and history[0]["proof"] == {"text": "Sí, quiero ofertas", "text_version": "tienda-2026"}
    assert history[0]["occurred_at"].startswith("2026-01-10T09:30")


def test_agents_may_not_record_consent_export_or_erase(client, world):
    nora = _customer(world, "Hola", "Nora Prieto")
    token = _sign_in(client, world.users["agent"])
    page = _get(client, f"/console/contacts/{nora['id']}")
    assert "Export data" not in page and "Erase contact" not in page and "Record consent" not in page
    for path in ("export", "erase"):
        assert "Not for your role" in _get(client, f"/console/contacts/{nora['id']}/{path}", 403)
    for path in ("erase", "consents"):
        r = client.post(f"/console/contacts/{nora['id']}/{path}", data={"csrf_token": token, "confirm": "ERASE"})
        assert r.status_code == 403
    assert world.api("GET", f"/v1/contacts/{nora['id']}")[0] == 200


def test_erasure_needs_the_name_a_phone_or_the_word(client, world):
    olga = _customer(world, "Borrad mis datos", "Olga Ramos")
    token = _sign_in(client, world.users["supervisor"])
    confirm = _get(client, f"/console/contacts/{olga['id']}/erase")
    assert re.search(r"<td>messages \(with their delivery statuses and media files\)</td><td>1</td>", confirm)
    assert re.search(r"<td>conversation threads</td><td>1</td>", confirm)
    assert "Olga Ramos" in confirm and olga["phone"] in confirm
    for wrong in ("", "Olga", "erase", "+34 000"):
        r = client.post(f"/console/contacts/{olga['id']}/erase", data={"csrf_token": token, "confirm": wrong})
        assert r.status_code == 400 and "Nothing was erased" in r.get_data(as_text=True)
    assert world.api("GET", f"/v1/contacts/{olga['id']}")[0] == 200
    r = client.post(f"/console/contacts/{olga['id']}/erase", data={"csrf_token": token, "confirm": " olga  ramos "})
    erased = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 200 and "Contact erased" in erased and "Olga Ramos" not in erased
    assert world.api("GET", f"/v1/contacts/{olga['id']}")[0] == 404
    again = client.post(f"/console/contacts/{olga['id']}/erase", data={"csrf_token": token, "confirm": "ERASE"})
    assert again.status_code == 404


def test_reading_a_contact_in_the_console_leaves_audit_rows_as_the_user(client, world):
    ines = _customer(world, "Hola", "Inés Cano")
    agent = world.users["agent"]
    _sign_in(client, agent)
    _get(client, f"/console/contacts/{ines['id']}")
    status, audit = world.api("GET", f"/v1/audit?action=read:*&actor=user:{agent['id']}&limit=200")
    assert status == 200, audit
    reads = {(e["action"], e["target_id"]) for e in audit["data"]}
    for route in ("/v1/contacts/<contact_id>", "/v1/contacts/<contact_id>/timeline",
                  "/v1/contacts/<contact_id>/consents", "/v1/threads"):
        assert (f"read:{route}", ines["id"]) in reads, route


def test_another_accounts_contact_is_not_found(client, world, live):
    hidden = _customer(world, "Privado", "Fede Gil")
    other = World(live, "other")
    token = _sign_in(client, other.users["supervisor"])
    for path in ("", "/export", "/erase"):
        text = _get(client, f"/console/contacts/{hidden['id']}{path}", 404)
        assert "Fede Gil" not in text and "Privado" not in text
    for path, data in (("/attributes", {"name": "x"}), ("/tags", {"add": "x"}), ("/erase", {"confirm": "ERASE"})):
        assert client.post(f"/console/contacts/{hidden['id']}{path}", data={"csrf_token": token, **data}).status_code == 404
    assert world.api("GET", f"/v1/contacts/{hidden['id']}")[1]["tags"] == []


def test_a_merged_contact_opens_its_survivor(client, world):
    keep = _customer(world, "Soy Juan", "Juan Ortega")
    twin = _customer(world, "Soy Juan otra vez, desde otro número", "Juan O.")
    status, body = world.api("POST", f"/v1/contacts/{keep['id']}/merge", {"contact_id": twin["id"]})
    assert status == 201, body
    _sign_in(client, world.users["agent"])
    r = client.get(f"/console/contacts/{twin['id']}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/console/contacts/{keep['id']}")
    text = _get(client, r.headers["Location"])
    assert "That contact was merged into this one" in text
    assert "desde otro número" in text and "from a merged contact" in text and twin["phone"] in text


@pytest.mark.parametrize("typed", ["ERASE", "+34 62", ""])
def test_the_confirmation_words(typed):
    from gateway.console.contact_views import confirmed
    contact = {"name": "Lucía Gómez", "identities": [{"kind": "phone", "address": "+34620001122"}]}
    assert confirmed(contact, typed) is (typed == "ERASE")
    assert confirmed(contact, "+34 620 00 11 22") and confirmed(contact, "lucía  GÓMEZ")

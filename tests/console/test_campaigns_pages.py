"""The console's campaign pages: a supervisor creates a campaign from a template and an audience in a real browser,
dry-runs it, starts, pauses and resumes it, watches it complete through the live gateway's own workers and the
sandbox, and downloads its recipients; and, server-side, the role wall, the form's field errors, and the tenant
wall on a campaign's URL."""
from __future__ import annotations

import csv
import html as html_text
import io
import re
import secrets

from playwright.sync_api import expect

from tests.console.conftest import World, csrf_of, session_in, sign_in

TEMPLATE = {"name": "renovacion", "language": "es", "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hola {{1}}, tu plan {{2}} se renueva el {{3}}.",
                            "example": {"body_text": [["Ana", "Plus", "1 de diciembre"]]}}]}
SLOW = 20_000


def add_template(world: World) -> None:
    status, body = world.api("POST", "/v1/templates", {"channel_id": world.channel["id"], **TEMPLATE})
    assert status == 201, body


def add_contact(world: World, first_name: str, *, consent: bool = True, plan: str = "Plus") -> str:
    status, contact = world.api("POST", "/v1/contacts", {
        "language": "es", "profile": {"first_name": first_name, "plan": plan},
        "identities": [{"kind": "phone", "address": f"+34600{secrets.randbelow(10**6):06d}"}]})
    assert status == 201, contact
    if consent:
        status, body = world.api("POST", f"/v1/contacts/{contact['id']}/consents", {
            "channel_kind": "all", "purpose": "marketing", "action": "granted", "source": "web_form",
            "proof": {"text": "Quiero recibir ofertas", "text_version": "v1", "form_submission_id": "f-1"}})
        assert status == 201, body
    return contact["id"]


def console_client(app, user: dict):
    """A Flask test client signed in to the console as ``user`` (through the sign-in form, as a browser)."""
    client = app.test_client()
    session_in(client, user)
    return client


def field_errors(page: str) -> dict[str, str]:
    """Each field's error on a console form: {field: message}."""
    return {name: html_text.unescape(message)
            for name, message in re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]+)</p>', page)}


def csrf_from(client, path: str) -> str:
    return csrf_of(client.get(path))


# --- in the browser ------------------------------------------------------------------------------------------

def test_a_supervisor_runs_a_campaign_from_dry_run_to_completed(page, live, shots):
    world = World(live, "campaigns")
    add_template(world)
    opted_in = [add_contact(world, name) for name in ("Ana", "Luis", "Marta")]
    no_opt_in = add_contact(world, "Pablo", consent=False)

    sign_in(page, live, world.users["supervisor"], next_path="/console/campaigns/new")
    page.get_by_label("Name", exact=True).fill("renewal-console")
    page.get_by_label("Template", exact=True).fill("renovacion")
    page.get_by_label("Language", exact=True).fill("es")
    for n, (source, value, default) in enumerate((("attribute", "first_name", "cliente"), ("attribute", "plan", ""),
                                                  ("constant", "1 de diciembre", "")), 1):
        page.get_by_label(f"Parameter {n}: value from").select_option(source)
        page.get_by_label(f"Parameter {n}: attribute or text").fill(value)
        page.get_by_label(f"Parameter {n}: default").fill(default)
    page.get_by_label("Contacts with tags and attributes").check()
    page.get_by_label("Attributes", exact=True).fill("plan=Plus")
    # Slow enough that pausing right after starting finds it still running; no canary for four recipients.
    page.get_by_label("Pace (messages per second)").fill("0.5")
    page.get_by_label("Canary size").fill("0")

    page.get_by_role("button", name="Dry run").click()
    dry = page.locator("#dry-run")
    expect(dry).to_contain_text("nothing was saved")
    expect(dry.locator("[data-count=recipients]")).to_have_text("4")
    expect(dry.locator("[data-count=would_send]")).to_have_text("3")
    expect(dry).to_contain_text("no marketing opt-in recorded")
    status, listed = world.api("GET", "/v1/campaigns")
    assert status == 200 and listed["data"] == []          # a dry run saves nothing

    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/console/campaigns/[0-9a-f-]{36}$"))
    campaign_id = page.url.rsplit("/", 1)[1]
    state = page.locator("#campaign-state [data-state]")
    expect(state).to_have_text("draft")
    expect(page.get_by_role("status").first).to_contain_text("created as a draft")

    page.get_by_role("button", name="Start").click()
    expect(state).to_have_text(re.compile("running|scheduled"))
    page.get_by_role("button", name="Pause").click()
    expect(state).to_have_text("paused")
    expect(page.locator("#campaign-state")).to_contain_text("paused over the API")
    page.get_by_role("button", name="Resume").click()
    expect(state).to_have_text(re.compile("running|completed"))

    # No reload from here: the dashboard's live parts follow the change feed.
    expect(state).to_have_text("completed", timeout=SLOW)
    progress = page.locator("#campaign-progress")
    expect(progress.locator("[data-count=sent]")).to_have_text("3", timeout=SLOW)
    expect(progress.locator("[data-count=read]")).to_have_text("3", timeout=SLOW)
    expect(progress.locator("[data-part=skipped]")).to_have_text("1")
    expect(progress).to_contain_text("no_marketing_consent")
    chart = page.locator("#campaign-activity svg[role=img]")
    expect(chart).to_contain_text("Sends, deliveries, reads and replies")
    expect(chart.locator("desc")).to_contain_text("sent: 3 total", timeout=SLOW)
    expect(page.locator("#campaign-activity-table tfoot")).to_contain_text("3")
    page.reload()     # the recipients table is read when the page is opened (an audited read)
    expect(page.locator("#recipients tbody tr")).to_have_count(4)
    page.screenshot(path=shots / "campaign.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"campaign-{campaign_id}-recipients.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert sorted(r["contact_id"] for r in rows) == sorted([*opted_in, no_opt_in])
    by_contact = {r["contact_id"]: r for r in rows}
    assert all(by_contact[c]["state"] == "queued" and by_contact[c]["status"] == "read" for c in opted_in)
    assert by_contact[no_opt_in]["state"] == "skipped" and by_contact[no_opt_in]["skip_reason"] == "no_marketing_consent"
    assert all(r["address"].startswith("+34600") for r in rows)
    # The download read addresses: the audit log says who read them.
    status, audit = world.api("GET", f"/v1/audit?target_id={campaign_id}")
    assert status == 200 and any(e["actor"] == f"user:{world.users['supervisor']['id']}" for e in audit["data"])


# --- server-side ----------------------------------------------------------------------------------------------

def test_an_agent_gets_the_403_page_on_campaign_and_report_pages(app, live):
    world = World(live, "roles")
    agent = console_client(app, world.users["agent"])
    for path in ("/console/campaigns", "/console/campaigns/new", "/console/reports", "/console/reports.csv"):
        r = agent.get(path)
        assert r.status_code == 403, path
        text = r.get_data(as_text=True)
        assert "Not for your role" in text and "you are signed in as an agent" in text and "Traceback" not in text
    r = agent.post("/console/campaigns/new", data={"csrf_token": csrf_from(agent, "/console/inbox"), "name": "x"})
    assert r.status_code == 403
    assert world.api("GET", "/v1/campaigns")[1]["data"] == []


def test_an_invalid_campaign_form_comes_back_with_each_fields_error_and_saves_nothing(app, live):
    world = World(live, "form")
    add_template(world)
    add_contact(world, "Ana")
    supervisor = console_client(app, world.users["supervisor"])
    form = supervisor.get("/console/campaigns/new").get_data(as_text=True)
    assert world.channel["id"] in form and 'value="renovacion"' in form      # the pickers are filled in
    token = csrf_from(supervisor, "/console/campaigns/new")
    base = {"csrf_token": token, "purpose": "marketing", "channel_id": world.channel["id"],
            "audience_kind": "segment", "attributes": "plan=Plus", "action": "create"}

    # What only the form sees (an attribute line without '=') and what the API refuses, field by field.
    r = supervisor.post("/console/campaigns/new", data={**base, "name": "", "template_name": "no-such-template",
                                                       "pace_per_s": "fast", "quiet_from": "25:00", "quiet_to": "08:00"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    errors = field_errors(html)
    assert set(errors) >= {"name", "pace_per_s", "quiet_from"}, errors
    assert "1 to 200 characters" in errors["name"] and "messages per second" in errors["pace_per_s"]
    assert re.search(r'id="name" name="name" [^>]*aria-invalid="true" aria-describedby="name-error', html)
    assert 'role="alert"' in html and 'value="no-such-template"' in html     # typed values are kept

    r = supervisor.post("/console/campaigns/new", data={**base, "name": "november", "template_name": "no-such-template",
                                                       "attributes": "plan=Plus\nnot an attribute"})
    assert r.status_code == 422 and "name=value" in r.get_data(as_text=True)

    r = supervisor.post("/console/campaigns/new", data={**base, "name": "november", "template_name": "no-such-template"})
    errors = field_errors(r.get_data(as_text=True))
    assert r.status_code == 422 and "no template 'no-such-template'" in errors["template_name"]

    r = supervisor.post("/console/campaigns/new", data={**base, "name": "november", "template_name": "renovacion",
                                                       "p1_source": "attribute", "p1_value": "first_name"})
    errors = field_errors(r.get_data(as_text=True))
    assert r.status_code == 422 and "parameter" in errors["parameters"], errors

    r = supervisor.post("/console/campaigns/new", data={**base, "name": "november", "template_name": "renovacion",
                                                       "parameters_json": "[{\"attribute\": "})
    errors = field_errors(r.get_data(as_text=True))
    assert r.status_code == 422 and "not valid JSON" in errors["parameters_json"]
    assert world.api("GET", "/v1/campaigns")[1]["data"] == []               # nothing saved by any of them

    # A good form creates it; the same name again is the name's error, not a second campaign.
    good = {**base, "name": "november", "template_name": "renovacion", "parameters_json":
            '[{"attribute": "first_name", "default": "cliente"}, {"attribute": "plan"}, "1 de diciembre"]'}
    r = supervisor.post("/console/campaigns/new", data=good)
    assert r.status_code == 302 and re.fullmatch(r"/console/campaigns/[0-9a-f-]{36}", r.headers["Location"])
    r = supervisor.post("/console/campaigns/new", data=good)
    errors = field_errors(r.get_data(as_text=True))
    assert r.status_code == 422 and "november" in errors["name"]
    assert len(world.api("GET", "/v1/campaigns")[1]["data"]) == 1


def test_account_b_gets_404_for_account_a_campaign(app, live):
    a, b = World(live, "tenant-a"), World(live, "tenant-b")
    add_template(a)
    contact = add_contact(a, "Ana")
    status, campaign = a.api("POST", "/v1/campaigns", {
        "name": "a-only", "purpose": "marketing", "channel_id": a.channel["id"],
        "message": {"template": {"name": "renovacion", "parameters": ["x", "y", "z"]}},
        "audience": {"contact_ids": [contact]}})
    assert status == 201, campaign
    own = console_client(app, a.users["supervisor"])
    page = own.get(f"/console/campaigns/{campaign['id']}")
    assert page.status_code == 200 and "a-only" in page.get_data(as_text=True)
    listed = own.get("/console/campaigns").get_data(as_text=True)
    assert "a-only" in listed and "renovacion" in listed

    # An action the state does not allow is refused in words; cancelling leaves no buttons.
    token = csrf_from(own, "/console/campaigns")
    r = own.post(f"/console/campaigns/{campaign['id']}/resume", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == f"/console/campaigns/{campaign['id']}"
    assert "a draft campaign cannot be resumed" in own.get(r.headers["Location"]).get_data(as_text=True)
    r = own.post(f"/console/campaigns/{campaign['id']}/cancel", data={"csrf_token": token})
    page = own.get(r.headers["Location"]).get_data(as_text=True)
    assert "Campaign cancelled." in page and 'data-state="cancelled"' in page and ">Start</button>" not in page
    assert own.post(f"/console/campaigns/{campaign['id']}/start", data={}).status_code == 400     # no CSRF token

    other = console_client(app, b.users["supervisor"])
    for path in (f"/console/campaigns/{campaign['id']}", f"/console/campaigns/{campaign['id']}/recipients.csv",
                 "/console/campaigns/not-a-uuid"):
        r = other.get(path)
        assert r.status_code == 404, path
        assert "a-only" not in r.get_data(as_text=True)
    token = csrf_from(other, "/console/campaigns")
    r = other.post(f"/console/campaigns/{campaign['id']}/start", data={"csrf_token": token})
    assert r.status_code == 404
    assert "a-only" not in other.get("/console/campaigns").get_data(as_text=True)
    assert a.api("GET", f"/v1/campaigns/{campaign['id']}")[1]["state"] == "cancelled"

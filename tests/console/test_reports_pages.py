"""The console's reports page: the contact-center figures for a date range with some real activity (a customer
writes through the sandbox, a person answers, the thread is resolved and the customer scores the CSAT survey),
as figures, charts and tables per day, channel, team and agent; its CSV; and bad dates answered on the form."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from playwright.sync_api import expect

from tests.console.conftest import World, sign_in
from tests.console.test_campaigns_pages import console_client, field_errors

SLOW = 20_000


def some_activity(world: World, phone: str = "+34611222333") -> None:
    status, body = world.api("PUT", "/v1/surveys/config", {
        "kind": "csat", "questions": {"es": "¿Qué tal te atendimos?", "en": "How did we do?"}})
    assert status == 200, body
    world.say(phone, "Hola, ¿a qué hora abrís mañana?")
    threads = world.wait_api("/v1/threads", lambda b: len(b["data"]) == 1, what="the customer's thread")
    thread = threads["data"][0]
    status, body = world.api("POST", "/v1/messages", {"channel_id": world.channel["id"],
                                                       "contact_id": thread["contact_id"], "type": "text",
                                                       "text": {"body": "Abrimos a las 9:00."}})
    assert status == 202, body
    world.wait_api(f"/v1/threads/{thread['id']}/messages",
                   lambda b: any(m["direction"] == "outbound" and m["status"] in ("sent", "delivered", "read")
                                 for m in b["data"]), what="the answer sent")
    status, body = world.api("POST", f"/v1/threads/{thread['id']}/status", {"status": "resolved"})
    assert status == 200, body
    world.wait_api(f"/v1/threads/{thread['id']}/surveys", lambda b: any(s.get("message_id") for s in b["data"]),
                   what="the survey sent")
    world.say(phone, "5")
    world.wait_api("/v1/surveys/responses", lambda b: len(b["data"]) == 1, what="the CSAT answer")


def test_the_reports_page_shows_the_figures_and_charts_of_a_range(page, live, shots):
    world = World(live, "reports")
    some_activity(world)
    sign_in(page, live, world.users["supervisor"], next_path="/console/reports")
    today = date.fromisoformat(page.get_by_label("To (included)").input_value())
    assert page.get_by_label("From", exact=True).input_value() == (today - timedelta(days=6)).isoformat()   # last 7 days

    figures = page.locator("#figures")
    expect(figures.locator("[data-figure=conversations]")).to_contain_text("1")
    expect(figures.locator("[data-figure=first_response]")).not_to_contain_text("-")
    expect(figures.locator("[data-figure=resolution]")).not_to_contain_text("-")
    expect(figures.locator("[data-figure=csat]")).to_contain_text("5.00")
    expect(figures.locator("[data-figure=service_level]")).to_contain_text("%")
    for title in ("Conversations per day", "First response and resolution per day",
                  "Conversations and resolutions by channel", "Median first response by channel"):
        expect(page.locator("svg[role=img]", has_text=title)).to_have_count(1)
    channel_table = page.locator("section", has=page.get_by_role("heading", name="Per channel")).locator("table")
    expect(channel_table.locator("tbody tr", has_text="WhatsApp ES")).to_contain_text("1")
    expect(page.get_by_role("heading", name="Per agent")).to_be_visible()
    expect(page.get_by_role("heading", name="Per team")).to_be_visible()
    page.screenshot(path=shots / "reports.png", full_page=True)

    # A narrower range without the activity says so in its figures.
    page.get_by_label("From", exact=True).fill((today - timedelta(days=30)).isoformat())
    page.get_by_label("To (included)").fill((today - timedelta(days=20)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(figures.locator("[data-figure=conversations]")).to_contain_text("0")
    expect(figures.locator("[data-figure=first_response]")).to_contain_text("-")

    with page.expect_download() as download:
        page.get_by_role("link", name="by channel").click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert rows[-1]["group"] == "total" and "first_response_median_s" in rows[0]


def test_bad_report_dates_come_back_on_the_form_with_the_error(app, live):
    world = World(live, "report-dates")
    supervisor = console_client(app, world.users["supervisor"])

    r = supervisor.get("/console/reports?from=2026-13-01&to=2026-11-30")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    errors = field_errors(html)
    assert "is not a date" in errors["from"] and "to" not in errors
    assert re.search(r'id="from" name="from" type="date" value="2026-13-01"[^>]*aria-invalid="true"', html)
    assert 'role="alert"' in html and "Traceback" not in html and "svg" not in html

    r = supervisor.get("/console/reports?from=2026-11-30&to=2026-11-01")
    assert r.status_code == 422 and "is before from" in field_errors(r.get_data(as_text=True))["to"]

    r = supervisor.get("/console/reports?from=2025-01-01&to=2026-06-30")
    assert r.status_code == 422 and "at most 366" in field_errors(r.get_data(as_text=True))["to"]

    r = supervisor.get("/console/reports?from=2026-11-01&to=2026-11-07&sla_seconds=soon")
    assert r.status_code == 400 and "whole number" in field_errors(r.get_data(as_text=True))["sla_seconds"]

    r = supervisor.get("/console/reports.csv?from=2026-11-31&to=2026-12-01")
    assert r.status_code == 400 and "is not a date" in field_errors(r.get_data(as_text=True))["from"]

    r = supervisor.get("/console/reports.csv?from=2026-11-01&to=2026-11-07&group_by=channel")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert 'attachment; filename="report-channel-2026-11-01-2026-11-07.csv"' == r.headers["Content-Disposition"]
    lines = r.get_data(as_text=True).splitlines()
    assert lines[0].startswith("group,label,inbound_messages") and lines[-1].startswith("total,total,")

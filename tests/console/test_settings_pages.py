"""The console's settings pages (admins): channels, API keys, webhook endpoints and their delivery log, automation
rules, business hours and users. Server-side through the Flask test client against the live gateway's database
(with its real workers delivering webhooks), plus one walk through the pages in Chromium."""
from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
import time
import urllib.error
import urllib.request
import uuid

from gateway import db
from gateway.console import auth
from tests.console.conftest import APP_SECRET, PASSWORD, World, csrf_of as _csrf, session_in, sign_in

WRONG = "That email and password do not match"


def _client(app, user: dict, password: str = PASSWORD):
    """A browser of its own (test client with its cookies), signed in as ``user``."""
    c = app.test_client()
    session_in(c, user, password, next_path="/console/settings")
    return c


def _post(c, path: str, data: dict | None = None, page: str = "/console/settings"):
    """A form POST carrying the session's CSRF token (read from a page, as a browser would)."""
    token = _csrf(c.get(page))
    return c.post(path, data={"csrf_token": token, **(data or {})})


def _value(resp, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*value="([^"]*)"', resp.text)
    assert found, f"no #{element_id} with a value in the page"
    return html.unescape(found.group(1))


def _http(url: str, key: str):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _settings_urls(app, world) -> list[tuple[str, str, bool]]:
    """Every settings route as (method, URL, whether it names an id), ids filled with the world's channel or
    random ones."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.settings"):
            continue
        values = {name: (world.channel["id"] if name == "channel_id" else str(uuid.uuid4())) for name in rule.arguments}
        url = rule.build(values)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, url, bool(rule.arguments)))
    return out


def test_agents_and_supervisors_get_the_403_page_on_every_settings_url(app, world):
    urls = _settings_urls(app, world)
    assert len(urls) >= 30 and ("GET", "/console/settings", False) in urls
    for role in ("agent", "supervisor"):
        c = _client(app, world.users[role])
        for method, url, _ in urls:
            resp = c.open(url, method=method, data={})
            assert resp.status_code == 403, (role, method, url, resp.status_code)
            assert "Not for your role" in resp.text and "this page is for admins" in resp.text, (role, url)
    admin = _client(app, world.users["admin"])
    for method, url, named in urls:
        if method == "GET" and not named:
            assert admin.get(url).status_code == 200, url


def test_channels_show_status_and_health_and_pause_and_resume_through_the_api(app, world):
    admin = _client(app, world.users["admin"])
    listing = admin.get("/console/settings")
    assert listing.status_code == 200
    assert "WhatsApp ES" in listing.text and world.phone_number_id in listing.text and ">active<" in listing.text
    page = admin.get(f"/console/settings/channels/{world.channel['id']}")
    assert page.status_code == 200 and "app_secret" in page.text and "console-sandbox-app-secret" not in page.text
    resp = _post(admin, f"/console/settings/channels/{world.channel['id']}/status", {"status": "disabled"})
    assert resp.status_code == 302
    assert world.api("GET", f"/v1/channels/{world.channel['id']}")[1]["status"] == "disabled"
    assert "Resume channel" in admin.get(resp.headers["Location"]).text
    _post(admin, f"/console/settings/channels/{world.channel['id']}/status", {"status": "active"})
    assert world.api("GET", f"/v1/channels/{world.channel['id']}")[1]["status"] == "active"
    _post(admin, f"/console/settings/channels/{world.channel['id']}/name", {"name": "WhatsApp Madrid"})
    assert world.api("GET", f"/v1/channels/{world.channel['id']}")[1]["name"] == "WhatsApp Madrid"


def _provider_says(world, live, field: str, value: dict) -> None:
    """Meta's webhook for the world's WhatsApp Business Account (entry id = the channel's group id), signed
    with the channel's app secret and posted to the live gateway over HTTP."""
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{
        "id": "WABA-" + world.phone_number_id, "time": int(time.time()),
        "changes": [{"field": field, "value": value}]}]}).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{live.url}/webhooks/whatsapp", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
    with urllib.request.urlopen(req, timeout=15) as r:
        assert r.status == 200


def test_the_providers_quality_report_shows_as_the_channels_health(app, world, live):
    _provider_says(world, live, "phone_number_quality_update", {
        "display_phone_number": "15550001111", "event": "FLAGGED", "current_limit": "TIER_1K"})
    world.wait_api(f"/v1/channels/{world.channel['id']}", lambda c: "phone_quality" in (c["health"] or {}),
                   timeout=30, what="the quality notice on the channel")
    admin = _client(app, world.users["admin"])
    listing = admin.get("/console/settings")
    assert "Quality: <strong>FLAGGED</strong>" in listing.text and "Messaging limit: <strong>TIER_1K</strong>" in listing.text
    page = admin.get(f"/console/settings/channels/{world.channel['id']}")
    assert "FLAGGED" in page.text and "TIER_1K" in page.text and "phone quality" in page.text


def test_an_api_key_made_in_the_page_is_shown_once_and_works_over_http(app, world, live):
    admin = _client(app, world.users["admin"])
    before = len(world.api("GET", "/v1/api-keys")[1]["data"])
    refused = _post(admin, "/console/settings/api-keys", {"name": ""}, "/console/settings/api-keys")
    assert refused.status_code == 400
    assert 'id="name-error"' in refused.text and 'id="scopes-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert len(world.api("GET", "/v1/api-keys")[1]["data"]) == before   # nothing saved

    made = _post(admin, "/console/settings/api-keys", {"name": "CRM sync", "scopes": ["messages:read"]},
                 "/console/settings/api-keys")
    assert made.status_code == 201 and "not shown again" in made.text
    key = _value(made, "secret")
    assert key.startswith("gwk_")
    status, account = _http(f"{live.url}/v1/account", key)
    assert status == 200 and str(account["id"]) == str(world.id) and account["api_key"]["scopes"] == ["messages:read"]
    listing = admin.get("/console/settings/api-keys")
    assert "CRM sync" in listing.text and key not in listing.text   # shown once: the list has its prefix only

    key_id = next(k["id"] for k in world.api("GET", "/v1/api-keys")[1]["data"] if k["name"] == "CRM sync")
    assert _post(admin, f"/console/settings/api-keys/{key_id}/revoke", page="/console/settings/api-keys").status_code == 302
    assert _http(f"{live.url}/v1/account", key)[0] == 401


def test_a_webhook_endpoint_made_in_the_page_is_in_the_api_and_its_delivery_log_renders(app, world):
    admin = _client(app, world.users["admin"])
    bad = _post(admin, "/console/settings/webhooks", {"url": "not a url", "format": "standard"},
                "/console/settings/webhooks")
    assert bad.status_code == 422 and 'id="url-error"' in bad.text and 'id="event_types-error"' in bad.text
    assert world.api("GET", "/v1/webhook-endpoints")[1]["data"] == []   # nothing saved

    # A port nobody listens on: each attempt fails at once, so the log shows a failed delivery to replay.
    url = f"https://127.0.0.1:9/hooks/{secrets.token_hex(3)}"
    made = _post(admin, "/console/settings/webhooks", {"url": url, "format": "standard",
                                                       "event_types": ["message.received"], "include_content": "1"},
                 "/console/settings/webhooks")
    assert made.status_code == 201 and "not shown again" in made.text
    secret = _value(made, "secret")
    assert secret.startswith("whsec_")
    endpoint = next(e for e in world.api("GET", "/v1/webhook-endpoints")[1]["data"] if e["url"] == url)
    assert endpoint["event_types"] == ["message.received"] and endpoint["enabled"]

    world.say("+34600111222", "¿Abrís el sábado?")
    log = world.wait_api(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                         lambda b: b["data"] and b["data"][0]["attempts"] >= 1 and b["data"][0]["last_error"],
                         timeout=60, what="a failed delivery attempt")
    page = admin.get(f"/console/settings/webhooks/{endpoint['id']}")
    assert page.status_code == 200 and "Delivery log" in page.text and "message.received" in page.text
    assert "¿Abrís el sábado?" not in page.text and "+34600111222" not in page.text   # ids and facts only
    delivery = log["data"][0]["id"]
    assert f"/deliveries/{delivery}/replay" in page.text
    replayed = _post(admin, f"/console/settings/webhooks/{endpoint['id']}/deliveries/{delivery}/replay",
                     page=f"/console/settings/webhooks/{endpoint['id']}")
    assert replayed.status_code == 302
    after = world.api("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")[1]["data"]
    assert any(str(d["replay_of"]) == str(delivery) for d in after)
    assert admin.get(f"/console/settings/webhooks/{endpoint['id']}?state=dead").status_code == 200

    _post(admin, f"/console/settings/webhooks/{endpoint['id']}/enabled", {"enabled": "0"}, "/console/settings/webhooks")
    assert world.api("GET", f"/v1/webhook-endpoints/{endpoint['id']}")[1]["enabled"] is False
    rotated = _post(admin, f"/console/settings/webhooks/{endpoint['id']}/rotate", {"grace_hours": "1"},
                    "/console/settings/webhooks")
    assert rotated.status_code == 200 and "not shown again" in rotated.text
    assert _value(rotated, "secret").startswith("whsec_") and _value(rotated, "secret") != secret
    gone = _post(admin, f"/console/settings/webhooks/{endpoint['id']}/delete", page="/console/settings/webhooks")
    assert gone.status_code == 302 and world.api("GET", f"/v1/webhook-endpoints/{endpoint['id']}")[0] == 404


def test_an_invalid_automation_comes_back_with_its_errors_and_saves_nothing(app, world):
    admin = _client(app, world.users["admin"])
    page = "/console/settings/automations/new"
    broken = _post(admin, page, {"rule": '{"name": "hola",\n "kind": }'}, page)
    assert broken.status_code == 400 and "not valid JSON: line 2" in broken.text
    assert "{&#34;name&#34;: &#34;hola&#34;" in broken.text or '{"name": "hola"' in html.unescape(broken.text)
    wrong = '{"name": "hola", "kind": "greeting", "definition": {"actions": [{"type": "reply"}]}}'
    refused = _post(admin, page, {"rule": wrong}, page)
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text
    assert "<code>/kind</code>" in refused.text and "greeting" in html.unescape(refused.text)
    assert world.api("GET", "/v1/automations")[1]["data"] == []   # nothing saved

    good = '{"name": "hola", "kind": "welcome", "definition": {"actions": [{"type": "reply", "text": "¡Hola!"}]}}'
    made = _post(admin, page, {"rule": good}, page)
    assert made.status_code == 302
    rule = world.api("GET", "/v1/automations")[1]["data"][0]
    assert rule["name"] == "hola" and rule["enabled"] is True
    _post(admin, f"/console/settings/automations/{rule['id']}/enabled", {"enabled": "0"}, "/console/settings/automations")
    assert world.api("GET", f"/v1/automations/{rule['id']}")[1]["enabled"] is False
    defaults = world.api("GET", "/v1/automation-settings")[1]
    settings = _post(admin, "/console/settings/automations/settings",
                     {"max_per_thread_per_hour": "5000", "handoff_after_unanswered": "three"},
                     "/console/settings/automations")
    assert settings.status_code == 422 and 'id="max_per_thread_per_hour-error"' in settings.text
    assert 'id="handoff_after_unanswered-error"' in settings.text and 'value="three"' in settings.text
    assert world.api("GET", "/v1/automation-settings")[1] == defaults   # nothing saved
    saved = _post(admin, "/console/settings/automations/settings",
                  {"max_per_thread_per_hour": "7", "handoff_after_unanswered": "3"}, "/console/settings/automations")
    assert saved.status_code == 302
    assert world.api("GET", "/v1/automation-settings")[1] == {"max_per_thread_per_hour": 7, "handoff_after_unanswered": 3}


def _week(**days) -> dict:
    form = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        for i in range(2):
            opens, closes = (days.get(day) or [])[i] if i < len(days.get(day) or []) else ("", "")
            form[f"{day}-{i}-open"], form[f"{day}-{i}-close"] = opens, closes
    return form


def test_business_hours_saved_in_the_form_show_up_in_the_api_and_errors_come_back_per_field(app, world):
    admin = _client(app, world.users["admin"])
    page = "/console/settings/hours/new"
    wrong = _post(admin, page, {"name": "horario", "timezone": "Mars/Olympus", "reply": "Cerrado",
                                **_week(mon=[("09:00", "17:00")], tue=[("18:00", "09:00")])}, page)
    assert wrong.status_code == 422
    assert 'id="timezone-error"' in wrong.text and 'id="tue-0-error"' in wrong.text and 'id="mon-0-error"' not in wrong.text
    assert 'value="18:00"' in wrong.text   # the form as typed
    half = _post(admin, page, {"name": "", "reply": "Cerrado", "timezone": "Nowhere",
                               **_week(wed=[("09:00", "")])}, page)
    assert half.status_code == 422   # every problem at once: the form's own words and the API's
    assert "Give both the opening and the closing time" in half.text and 'id="timezone-error"' in half.text
    assert 'id="name-error"' in half.text
    assert world.api("GET", "/v1/automations")[1]["data"] == []   # nothing saved

    saved = _post(admin, page, {"name": "horario", "timezone": "Europe/Madrid",
                                "reply": "Abrimos {next_open}", "holidays": "2026-12-25\n2026-08-01 to 2026-08-15",
                                **_week(mon=[("09:00", "14:00"), ("16:00", "00:00")], sat=[("10:00", "13:00")])}, page)
    assert saved.status_code == 302
    rule = world.api("GET", "/v1/automations")[1]["data"][0]
    assert rule["kind"] == "business_hours" and rule["name"] == "horario"
    assert rule["definition"]["schedule"] == {
        "timezone": "Europe/Madrid", "weekly": {"mon": [["09:00", "14:00"], ["16:00", "24:00"]],
                                                "sat": [["10:00", "13:00"]]},
        "holidays": ["2026-12-25", {"from": "2026-08-01", "to": "2026-08-15"}]}
    assert rule["definition"]["actions"] == [{"type": "reply", "text": "Abrimos {next_open}"}]
    listing = admin.get("/console/settings/hours")
    assert "16:00–24:00" in listing.text and "Europe/Madrid" in listing.text
    edit = admin.get(f"/console/settings/hours/{rule['id']}")
    assert edit.status_code == 200 and _value(edit, "mon-1-close") == "00:00"
    _post(admin, f"/console/settings/hours/{rule['id']}", {"name": "horario", "timezone": "Europe/Madrid",
                                                          "reply": "Cerrado", **_week(fri=[("08:00", "15:00")])}, page)
    assert world.api("GET", f"/v1/automations/{rule['id']}")[1]["definition"]["schedule"]["weekly"] == {
        "fri": [["08:00", "15:00"]]}


def test_an_invited_user_signs_in_once_with_the_link(app, world):
    admin = _client(app, world.users["admin"])
    email = f"nueva-{secrets.token_hex(3)}@console.example"
    invited = _post(admin, "/console/settings/users/invite", {"email": email, "name": "Nueva", "role": "agent"},
                    "/console/settings/users")
    assert invited.status_code == 201 and "not shown again" in invited.text
    link = _value(invited, "link")
    path = re.sub(r"^https?://[^/]+", "", link)
    assert path.startswith("/console/signin/link/")
    assert email in admin.get("/console/settings/users").text

    newcomer = app.test_client()
    form = newcomer.get(path)
    assert form.status_code == 200 and "Choose a password" in form.text
    done = newcomer.post(path, data={"csrf_token": _csrf(form), "password": "una frase bastante larga"})
    assert done.status_code == 302 and newcomer.get("/console/updates").status_code == 200
    again = app.test_client().get(path)
    assert again.status_code == 410 and "cannot be used" in again.text
    bad = _post(admin, "/console/settings/users/invite", {"email": "nobody", "role": "agent"}, "/console/settings/users")
    assert bad.status_code == 400 and 'id="email-error"' in bad.text


def test_changing_a_role_ends_the_users_sessions_and_leaves_an_audit_row(app, world):
    admin = _client(app, world.users["admin"])
    agent_user = world.users["agent"]
    agent = _client(app, agent_user)
    assert agent.get("/console/updates").status_code == 200
    resp = _post(admin, f"/console/settings/users/{agent_user['id']}/role", {"role": "supervisor"},
                 "/console/settings/users")
    assert resp.status_code == 302
    nxt = agent.get("/console/updates")
    assert nxt.status_code == 302 and nxt.headers["Location"].startswith("/console/signin")
    with db.connection() as conn:
        row = conn.execute("SELECT role FROM console_users WHERE id = %s", (agent_user["id"],)).fetchone()
        audited = conn.execute("SELECT actor, detail FROM audit_log WHERE account_id = %s AND action = "
                               "'console_user.updated' AND target_id = %s", (world.id, str(agent_user["id"]))).fetchall()
    assert row["role"] == "supervisor"
    assert {"actor": f"user:{world.users['admin']['id']}", "detail": {"role": "supervisor"}} in audited

    # An admin cannot demote or disable themselves: the page says so and nothing changes.
    me = world.users["admin"]["id"]
    users_page = admin.get("/console/settings/users")
    assert "You cannot change your own role or disable yourself" in users_page.text
    _post(admin, f"/console/settings/users/{me}/role", {"role": "agent"}, "/console/settings/users")
    _post(admin, f"/console/settings/users/{me}/state", {"disabled": "1"}, "/console/settings/users")
    assert admin.get("/console/settings/users").status_code == 200   # still signed in, still an admin

    # Sign out everywhere: the supervisor's open session ends too.
    supervisor = _client(app, world.users["supervisor"])
    _post(admin, f"/console/settings/users/{world.users['supervisor']['id']}/signout", page="/console/settings/users")
    assert supervisor.get("/console/updates").status_code == 302


def test_a_disabled_user_cannot_sign_in_with_the_wrong_password_message(app, world):
    admin = _client(app, world.users["admin"])
    target = world.users["supervisor"]
    _post(admin, f"/console/settings/users/{target['id']}/state", {"disabled": "1"}, "/console/settings/users")
    c = app.test_client()
    form = c.get("/console/signin")
    refused = c.post("/console/signin", data={"email": target["email"], "password": PASSWORD,
                                              "csrf_token": _csrf(form)})
    assert refused.status_code == 401 and WRONG in refused.text
    assert c.get_cookie(auth.COOKIE, path="/console") is None
    _post(admin, f"/console/settings/users/{target['id']}/state", {"disabled": "0"}, "/console/settings/users")
    assert _client(app, target).get("/console/updates").status_code == 200


def test_account_b_admin_cannot_reach_account_a_settings_by_url(app, world, live):
    status, endpoint = world.api("POST", "/v1/webhook-endpoints", {"url": "https://crm.example/hook",
                                                                   "event_types": ["message.received"]})
    assert status == 201
    status, rule = world.api("POST", "/v1/automations", {"name": "hola", "kind": "welcome", "definition": {
        "actions": [{"type": "reply", "text": "Hola"}]}})
    assert status == 201
    other = World(live, "other")
    intruder = _client(app, other.users["admin"])
    for url in (f"/console/settings/channels/{world.channel['id']}", f"/console/settings/webhooks/{endpoint['id']}",
                f"/console/settings/automations/{rule['id']}", f"/console/settings/hours/{rule['id']}"):
        resp = intruder.get(url)
        assert resp.status_code == 404 and "Not found" in resp.text, url
    for url, data in ((f"/console/settings/channels/{world.channel['id']}/status", {"status": "disabled"}),
                      (f"/console/settings/webhooks/{endpoint['id']}/delete", {}),
                      (f"/console/settings/users/{world.users['agent']['id']}/state", {"disabled": "1"})):
        assert _post(intruder, url, data).status_code == 404, url
    assert world.api("GET", f"/v1/channels/{world.channel['id']}")[1]["status"] == "active"
    assert world.api("GET", f"/v1/webhook-endpoints/{endpoint['id']}")[0] == 200
    listing = intruder.get("/console/settings")
    assert world.phone_number_id not in listing.text and other.phone_number_id in listing.text


def test_an_admin_walks_the_settings_pages_in_the_browser(live, page, world, shots):
    from playwright.sync_api import expect
    admin = world.users["admin"]
    sign_in(page, live, admin, next_path="/console/settings")
    expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    expect(page.get_by_role("link", name="WhatsApp ES")).to_be_visible()
    page.screenshot(path=shots / "settings-channels.png", full_page=True)

    settings_nav = page.get_by_role("navigation", name="Settings")
    settings_nav.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Reporting")
    page.get_by_label("messages:read").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("not shown again", timeout=20000)
    expect(page.get_by_label("The key")).to_have_value(re.compile(r"^gwk_"))

    settings_nav = page.get_by_role("navigation", name="Settings")
    settings_nav.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhook endpoints")).to_be_visible()
    settings_nav.get_by_role("link", name="Automation rules").click()
    expect(page.get_by_role("heading", name="Automation settings")).to_be_visible()
    settings_nav.get_by_role("link", name="Business hours").click()
    page.get_by_role("link", name="Add business hours").click()
    page.get_by_label("Monday opens").fill("09:00")
    page.get_by_label("Monday closes", exact=True).fill("18:00")
    page.get_by_label("Out-of-hours reply").fill("We are closed; back {next_open}.")
    page.get_by_role("button", name="Save business hours").click()
    expect(page.get_by_role("status")).to_contain_text("saved", timeout=20000)
    expect(page.get_by_role("cell", name="09:00–18:00")).to_be_visible()

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Users").click()
    expect(page.get_by_label(f"Role of {world.users['agent']['email']}")).to_have_value("agent")
    expect(page.get_by_text("You cannot change your own role or disable yourself")).to_be_visible()
    page.screenshot(path=shots / "settings-users.png", full_page=True)

    page.set_viewport_size({"width": 360, "height": 800})   # a phone: the widest pages still fit, no sideways scroll
    for path in ("/console/settings/users", "/console/settings/hours/new", "/console/settings/webhooks"):
        page.goto(live.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path

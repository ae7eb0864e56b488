"""The template pages, server side with the Flask test client: the catalog with status and quality as badges,
one template with its components, Meta's verdict and the validator's findings in words, the preview of the
values typed into its form (a WhatsApp bubble and the plain SMS text), a refused submission coming back with the
validator's messages next to the fields, and the pages closed to agents.

The catalog is made the way a business makes it: templates submitted through the API to the sandbox (Meta),
one created at Meta directly and pulled by a sync, and a rejection arriving as Meta's signed status webhook."""
from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import pytest

from gateway import db
from tests.console.conftest import World, _call, csrf_of as _csrf, session_in

SEASONAL = {"name": "seasonal_promotion", "language": "en_US", "category": "MARKETING", "components": [
    {"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!", "example": {"header_text": ["Summer Sale"]}},
    {"type": "BODY", "text": "Shop now through {{1}} and use code {{2}} to get {{3}} off of all merchandise.",
     "example": {"body_text": [["the end of August", "25OFF", "25%"]]}},
    {"type": "FOOTER", "text": "Use the buttons below to manage your subscriptions"},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Unsubscribe from Promos"}]}]}
SHIPPED = {"name": "order_shipped", "language": "en_US", "category": "UTILITY", "components": [
    {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way.",
     "example": {"body_text": [["Pablo", "A-1001"]]}}]}
# Made in WhatsApp Manager before the gateway existed: it starts with a parameter and has no example, which
# the validator reports (Meta would reject it today).
LEGACY = {"name": "legacy_hello", "language": "en_US", "category": "UTILITY",
          "components": [{"type": "BODY", "text": "{{1}} thanks you for writing."}]}


def _sign_in(client, user: dict, next_path: str = "/console/templates") -> str:
    session_in(client, user, next_path=next_path)
    return _csrf(client.get("/console/contacts"))


def _sandbox(world: World, path: str, doc: dict) -> dict:
    status, body = _call(world.live.sandbox_url + path, "POST", doc, {"Authorization": "Bearer EAAG-console"})
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def catalog(live):
    """An account whose WhatsApp catalog holds: seasonal_promotion approved (en_US, quality high) and in review
    (es), order_shipped rejected by Meta with its reason and low quality, and legacy_hello pulled from Meta."""
    world = World(live, "templates")
    waba = world.channel["group_id"]
    channel_id = world.channel["id"]
    status, made = world.api("POST", "/v1/templates", {"channel_id": channel_id, **SEASONAL})
    assert status == 201 and made["template"]["status"] == "APPROVED", made
    _sandbox(world, "/_sandbox/config", {"scope": waba, "template_status": "PENDING"})
    status, body = world.api("POST", "/v1/templates", {"channel_id": channel_id, **SEASONAL, "language": "es"})
    assert status == 201 and body["template"]["status"] == "PENDING", body
    _sandbox(world, "/_sandbox/config", {"scope": waba, "template_status": "APPROVED"})
    status, shipped = world.api("POST", "/v1/templates", {"channel_id": channel_id, **SHIPPED})
    assert status == 201, shipped
    _sandbox(world, f"/v24.0/{waba}/message_templates", LEGACY)
    status, body = world.api("POST", "/v1/templates/sync", {"channel_id": channel_id})
    assert status == 200 and body["pulled"] == 4, body
    # Meta rejects order_shipped: its signed status webhook reaches the gateway's webhook worker.
    _sandbox(world, f"/_sandbox/templates/{shipped['template']['meta_id']}/status",
             {"status": "REJECTED", "reason": "INVALID_FORMAT"})
    world.wait_api(f"/v1/templates/order_shipped?channel_id={channel_id}&language=en_US",
                   lambda t: t["status"] == "REJECTED" and t["status_reason"] == "INVALID_FORMAT",
                   what="the rejection webhook")
    # The sandbox sends no quality webhooks: apply what the gateway applies on Meta's
    # message_template_quality_update (templates_catalog.updates → store.set_quality).
    from templates_catalog import store
    with db.connection() as conn:
        store.set_quality(conn, account_id=world.id, meta_id=made["template"]["meta_id"], quality="GREEN")
        store.set_quality(conn, account_id=world.id, meta_id=shipped["template"]["meta_id"], quality="RED")
    return world


def _page(client, path: str, status: int = 200) -> str:
    r = client.get(path)
    text = r.get_data(as_text=True)
    assert r.status_code == status, text[:1500]
    return text


def _row(text: str, name: str) -> str:
    """The catalog table's row of ``name``."""
    return re.search(r"<tr>\s*<td><a [^>]*>" + name + r"</a>.*?</tr>", text, re.S).group(0)


def test_the_catalog_shows_each_language_with_status_and_quality(client, catalog):
    _sign_in(client, catalog.users["supervisor"])
    text = _page(client, "/console/templates")
    seasonal = _row(text, "seasonal_promotion")
    assert "en_US" in seasonal and "es" in seasonal and "marketing" in seasonal
    assert '<span class="badge ok" title="Meta approved it: it can be sent.">approved</span>' in seasonal
    assert '<span class="badge ok">high quality</span>' in seasonal
    assert '<span class="badge warn"' in seasonal and ">in review</span>" in seasonal
    shipped = _row(text, "order_shipped")
    assert ">rejected</span>" in shipped and '<span class="badge bad">low quality</span>' in shipped
    assert "reason: invalid format" in shipped
    assert "quality not rated yet" in _row(text, "legacy_hello")
    rejected_only = _page(client, "/console/templates?status=REJECTED")
    assert "order_shipped" in rejected_only and "seasonal_promotion" not in rejected_only


def test_a_template_page_says_what_meta_decided_and_what_the_validator_finds(client, catalog):
    _sign_in(client, catalog.users["supervisor"])
    channel = catalog.channel["id"]
    shipped = html.unescape(_page(client, f"/console/templates/order_shipped?channel_id={channel}"))
    assert "Meta rejected it: fix what the reason says" in shipped
    assert "its format is invalid (parameters, examples or formatting)" in shipped
    assert "Hi {{1}}, your order {{2}} is on its way." in shipped          # the body component
    legacy = html.unescape(_page(client, f"/console/templates/legacy_hello?channel_id={channel}"))
    issues = re.search(r'<ul class="issues".*?</ul>', legacy, re.S).group(0)
    assert "start" in issues and "/components/0/text" in issues            # a body may not start with a parameter
    assert "example" in issues                                             # and each parameter needs an example
    seasonal = html.unescape(_page(client, f"/console/templates/seasonal_promotion?channel_id={channel}"))
    assert "Nothing in it breaks Meta's published rules" in seasonal
    assert seasonal.count('class="panel translation"') == 2                # en_US and es
    _page(client, f"/console/templates/no_such_template?channel_id={channel}", 404)


def test_the_preview_renders_the_values_typed_for_each_language(client, catalog):
    _sign_in(client, catalog.users["supervisor"])
    query = urlencode({"channel_id": catalog.channel["id"], "lang": "en_US", "header": "Winter Sale",
                       "body.1": "Sunday", "body.2": "SNOW10", "body.3": "10%"})
    text = html.unescape(_page(client, f"/console/templates/seasonal_promotion?{query}"))
    english = text[text.index('id="lang-en_US"'):text.index('id="lang-es"')]
    assert '<p class="wa-header">Our Winter Sale is on!</p>' in english
    assert ('<p class="wa-body">Shop now through Sunday and use code SNOW10 to get 10% off of all '
            'merchandise.</p>') in english
    assert '<p class="wa-footer">Use the buttons below to manage your subscriptions</p>' in english
    assert "<li>Unsubscribe from Promos</li>" in english
    sms = re.search(r'<pre class="sms-text" data-channel="sms">(.*?)</pre>', english, re.S).group(1)
    assert sms.startswith("Our Winter Sale is on!") and "SNOW10" in sms
    assert 'name="body.2" type="text" value="SNOW10"' in english            # the form keeps what was typed
    spanish = text[text.index('id="lang-es"'):]
    assert "Our Summer Sale is on!" in spanish                             # the definition's own examples
    assert "Not sendable until Meta approves it." in spanish


def test_a_value_meta_would_refuse_shows_next_to_its_field(client, catalog):
    _sign_in(client, catalog.users["supervisor"])
    query = urlencode({"channel_id": catalog.channel["id"], "lang": "en_US", "header": "Winter Sale",
                       "body.1": "Sunday", "body.2": "", "body.3": "10%"})
    text = html.unescape(_page(client, f"/console/templates/seasonal_promotion?{query}"))
    english = text[text.index('id="lang-en_US"'):text.index('id="lang-es"')]
    field = re.search(r'<input id="(p-en_US-\d+)" name="body.2"[^>]*>', english)
    assert 'aria-invalid="true"' in field.group(0)
    error = re.search(r'<p class="field-error" id="' + field.group(1) + r'-error">(.*?)</p>', english).group(1)
    assert "empty" in error
    assert 'class="wa-bubble"' not in english


def test_a_refused_submission_comes_back_with_the_validator_messages(client, catalog):
    csrf = _sign_in(client, catalog.users["supervisor"])
    form = _page(client, "/console/templates/new-template")
    assert 'name="body"' in form and "<label for=\"n-name\">Name</label>" in form
    r = client.post("/console/templates/new-template", data={
        "csrf_token": csrf, "channel_id": catalog.channel["id"], "name": "Bad Name", "language": "en_US",
        "category": "UTILITY", "body": "{{1}} is ready", "examples": "", "header": "", "footer": "",
        "quick_replies": ""})
    text = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422, text[:1500]
    name_error = re.search(r'<div class="field-error" id="n-name-error">(.*?)</div>', text, re.S).group(1)
    assert "lowercase" in name_error
    body_error = re.search(r'<div class="field-error" id="n-body-error">(.*?)</div>', text, re.S).group(1)
    assert "start" in body_error
    assert 'id="n-name" name="name" type="text" value="Bad Name" aria-invalid="true"' in text
    status, listed = catalog.api("GET", f"/v1/templates?channel_id={catalog.channel['id']}&limit=200")
    assert status == 200 and all(t["name"] != "Bad Name" for t in listed["data"])   # nothing submitted


def test_a_good_submission_reaches_meta_and_the_catalog(client, catalog):
    csrf = _sign_in(client, catalog.users["supervisor"])
    r = client.post("/console/templates/new-template", data={
        "csrf_token": csrf, "channel_id": catalog.channel["id"], "name": "pickup_ready", "language": "es",
        "category": "UTILITY", "header": "", "body": "Hola {{1}}, tu pedido ya se puede recoger.",
        "examples": "Marta", "footer": "", "quick_replies": "Gracias"})
    assert r.status_code == 302, r.get_data(as_text=True)[:1500]
    assert "/console/templates/pickup_ready" in r.headers["Location"]
    text = html.unescape(_page(client, r.headers["Location"]))
    assert "Hola Marta, tu pedido ya se puede recoger." in text and "<li>Gracias</li>" in text


def test_agents_get_the_403_page(client, catalog):
    _sign_in(client, catalog.users["agent"])
    for path in ("/console/templates", f"/console/templates/seasonal_promotion?channel_id={catalog.channel['id']}",
                 "/console/templates/new-template"):
        text = _page(client, path, 403)
        assert "Not for your role" in text and "seasonal_promotion" not in text
    nav = _page(client, "/console/contacts")
    assert 'href="/console/templates"' not in nav

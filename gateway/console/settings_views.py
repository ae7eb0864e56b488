"""Console pages: settings, for admins. Channels and their health, API keys, webhook endpoints and their delivery
log here; automation rules and business hours in settings_automation_views.py, the console's own users in
settings_user_views.py; the helpers all three share (the sub-navigation, API answers to form errors) here.

Everything except users goes through the REST API (api_client) as the signed-in admin, so the API's validation,
tenant walls and audit apply unchanged. Users have no REST API (they are the console's own): their pages call
gateway/console/users.py and invites.py, which write an audit row for each change.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import abort, redirect, render_template, request
from werkzeug.exceptions import default_exceptions

from gateway import event_types, webhook_endpoints, webhook_log
from gateway.accounts import SCOPES
from gateway.console import api_client, auth
from gateway.console.blueprint import bp, notify
from gateway.normalise import HEALTH_TOPICS
from templates_catalog.updates import TOPICS as TEMPLATE_TOPICS

SECTIONS = (  # (key, path, label): the settings sub-navigation
    ("channels", "/console/settings", "Channels"),
    ("keys", "/console/settings/api-keys", "API keys"),
    ("webhooks", "/console/settings/webhooks", "Webhooks"),
    ("automations", "/console/settings/automations", "Automation rules"),
    ("hours", "/console/settings/hours", "Business hours"),
    ("users", "/console/settings/users", "Users"),
)


def _page(template: str, section: str, status: int = 200, **context):
    return render_template(f"console/{template}", sections=SECTIONS, section=section, **context), status


def _body(reply):
    """The API's answer, or the console's error page with the API's refusal in words. A 404 stays a plain 404:
    an id of another account is simply not there."""
    if reply.ok:
        return reply.body
    if reply.status == 404:
        abort(404)
    abort(reply.status if reply.status in default_exceptions and reply.status >= 400 else 502, reply.detail)


def _after(reply, back: str, message: str):
    """After a button: back to ``back`` saying what was done, or what the API refused and why."""
    if reply.status == 404:
        abort(404)
    if reply.ok:
        return notify(redirect(back), message)
    return notify(redirect(back), reply.detail, "error")


def _problem_errors(reply) -> list[dict]:
    body = reply.body if isinstance(reply.body, dict) else {}
    return [e for e in body.get("errors") or [] if isinstance(e, dict)]


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        abort(404)


def _scalars(detail, most: int = 10) -> list[tuple[str, str]]:
    """A provider notice's plain facts (no nested lists), for people to read."""
    if not isinstance(detail, dict):
        return []
    out = []
    for key, value in detail.items():
        if isinstance(value, (str, int, float, bool)) and value != "":
            out.append((str(key), str(value)[:160]))
    return out[:most]


# --- channels ----------------------------------------------------------------------------------------------

HEALTH_WORDS = ("event", "decision", "alert_status")


def _health(channel: dict) -> dict:
    """What the provider last said about the channel: quality and messaging limit (WhatsApp), and per topic."""
    health = channel.get("health") or {}
    quality = health.get("phone_quality") if isinstance(health.get("phone_quality"), dict) else {}
    topics = []
    for topic, detail in sorted(health.items()):
        word = next((detail.get(w) for w in HEALTH_WORDS if isinstance(detail, dict) and detail.get(w)), None)
        topics.append({"topic": topic.replace("_", " "), "word": word, "facts": _scalars(detail)})
    return {"quality": quality.get("event"), "limit": quality.get("current_limit"), "topics": topics}


# Notices about the business's number and templates. Others (a customer's marketing preference, calls,
# history sync) can name a customer even without a contact (a wa_id), so the settings pages leave them out.
CHANNEL_TOPICS = HEALTH_TOPICS | TEMPLATE_TOPICS


def _channel_notices(channel_id=None) -> list[dict]:
    """Recent provider notices about the account's channels, newest first. The API has no channel filter: the
    latest 200 of the account are read and kept by channel here."""
    rows = _body(api_client.get("/v1/notices", limit=200))["data"]
    return [n for n in rows if n.get("topic") in CHANNEL_TOPICS and n.get("contact_id") is None
            and n.get("channel_id") is not None and (channel_id is None or str(n["channel_id"]) == str(channel_id))]


@bp.get("/settings")
@auth.page("admin")
def settings_channels():
    channels = _body(api_client.get("/v1/channels"))["data"]
    counts: dict[str, int] = {}
    for notice in _channel_notices():
        counts[str(notice["channel_id"])] = counts.get(str(notice["channel_id"]), 0) + 1
    return _page("settings_channels.html", "channels", channels=channels, health={c["id"]: _health(c) for c in channels},
                 notice_counts=counts, live=True)


@bp.get("/settings/channels/<channel_id>")
@auth.page("admin")
def settings_channel(channel_id):
    channel = _body(api_client.get(f"/v1/channels/{_uuid(channel_id)}"))
    notices = [dict(n, facts=_scalars(n["detail"])) for n in _channel_notices(channel["id"])[:30]]
    return _page("settings_channel.html", "channels", channel=channel, health=_health(channel), provider_notices=notices,
                 settings_json=json.dumps(channel.get("settings") or {}, indent=2, sort_keys=True), live=True)


@bp.post("/settings/channels/<channel_id>/status")
@auth.page("admin")
def settings_channel_status(channel_id):
    wanted = request.form.get("status")
    if wanted not in ("active", "disabled"):
        abort(400, "choose active (resume) or disabled (pause)")
    reply = api_client.patch(f"/v1/channels/{_uuid(channel_id)}", {"status": wanted})
    said = "Channel resumed: it sends and receives again" if wanted == "active" else \
        "Channel paused: sends are refused and its webhooks are not accepted until you resume it"
    return _after(reply, f"/console/settings/channels/{channel_id}", said)


@bp.post("/settings/channels/<channel_id>/name")
@auth.page("admin")
def settings_channel_name(channel_id):
    name = (request.form.get("name") or "").strip()
    if not name:
        return notify(redirect(f"/console/settings/channels/{channel_id}"), "Give the channel a name.", "error")
    reply = api_client.patch(f"/v1/channels/{_uuid(channel_id)}", {"name": name})
    return _after(reply, f"/console/settings/channels/{channel_id}", "Channel renamed")


# --- API keys ----------------------------------------------------------------------------------------------

def _keys_page(status: int = 200, **context):
    keys = _body(api_client.get("/v1/api-keys"))["data"]
    context.setdefault("form", {"name": "", "scopes": []})
    return _page("settings_keys.html", "keys", status, keys=keys, scopes=SCOPES, errors=context.pop("errors", {}),
                 **context)


@bp.get("/settings/api-keys")
@auth.page("admin")
def settings_keys():
    return _keys_page()


@bp.post("/settings/api-keys")
@auth.page("admin")
def settings_key_create():
    form = {"name": (request.form.get("name") or "").strip(), "scopes": request.form.getlist("scopes")}
    errors = {}
    if not form["name"]:
        errors["name"] = "Give the key a name that says who uses it (e.g. CRM sync)."
    if not form["scopes"]:
        errors["scopes"] = "Choose at least one scope."
    if errors:
        return _keys_page(400, form=form, errors=errors)
    reply = api_client.post("/v1/api-keys", form)
    if reply.status in (400, 422):
        found = {("scopes" if k.startswith("scopes") else k): v for k, v in reply.field_errors().items()}
        return _keys_page(422, form=form, errors=found or {"_": reply.detail})
    made = _body(reply)
    return _page("settings_key_made.html", "keys", 201, key=made)


@bp.post("/settings/api-keys/<key_id>/revoke")
@auth.page("admin")
def settings_key_revoke(key_id):
    reply = api_client.delete(f"/v1/api-keys/{_uuid(key_id)}")
    name = reply.body.get("name") if reply.ok and isinstance(reply.body, dict) else ""
    return _after(reply, "/console/settings/api-keys", f"API key {name} revoked: it no longer works")


# --- webhook endpoints -------------------------------------------------------------------------------------

def _whatsapp_channels() -> list[dict]:
    return [c for c in _body(api_client.get("/v1/channels"))["data"] if c["kind"] == "whatsapp"]


def _webhooks_page(status: int = 200, **context):
    endpoints = _body(api_client.get("/v1/webhook-endpoints"))["data"]
    context.setdefault("form", {"url": "", "description": "", "format": "standard", "event_types": [],
                                "include_content": True, "channel_ids": []})
    return _page("settings_webhooks.html", "webhooks", status, endpoints=endpoints, types=event_types.TYPES,
                 formats=webhook_endpoints.FORMATS, meta_types=webhook_endpoints.META_TYPES,
                 whatsapp=_whatsapp_channels(), errors=context.pop("errors", {}), **context)


@bp.get("/settings/webhooks")
@auth.page("admin")
def settings_webhooks():
    return _webhooks_page()


@bp.post("/settings/webhooks")
@auth.page("admin")
def settings_webhook_create():
    f = request.form
    form = {"url": (f.get("url") or "").strip(), "description": (f.get("description") or "").strip(),
            "format": f.get("format") or "standard", "event_types": f.getlist("event_types"),
            "include_content": f.get("include_content") == "1", "channel_ids": f.getlist("channel_ids")}
    doc = {"url": form["url"], "format": form["format"], "include_content": form["include_content"],
           "description": form["description"] or None,
           "event_types": ["*"] if "*" in form["event_types"] else (form["event_types"] or None)}
    if form["format"] == "meta":
        doc["channel_ids"] = form["channel_ids"] or None
        for name in ("secret", "verify_token"):
            if (f.get(name) or "").strip():
                doc[name] = f.get(name).strip()
    reply = api_client.post("/v1/webhook-endpoints", doc)
    if reply.status in (400, 403, 422):
        found = {k.split(".")[0]: v for k, v in reply.field_errors().items()}
        if reply.status == 403 or not found:
            found["_"] = reply.detail
        return _webhooks_page(reply.status, form=form, errors=found)
    made = _body(reply)
    return _page("settings_secret.html", "webhooks", 201, endpoint=made, secret=made.get("secret"), created=True)


def _deliveries_query() -> dict:
    args = request.args
    return {k: args.get(k) for k in ("state", "event_type", "before") if args.get(k)}


@bp.get("/settings/webhooks/<endpoint_id>")
@auth.page("admin")
def settings_webhook(endpoint_id):
    eid = _uuid(endpoint_id)
    endpoint = _body(api_client.get(f"/v1/webhook-endpoints/{eid}"))
    query = _deliveries_query()
    log = api_client.get(f"/v1/webhook-endpoints/{eid}/deliveries", limit=25, **query)
    if log.status == 400:   # a filter or cursor typed into the address: say so, show the newest page
        log_error, log = log.detail, api_client.get(f"/v1/webhook-endpoints/{eid}/deliveries", limit=25)
    else:
        log_error = None
    deliveries = _body(log)
    filters = {k: v for k, v in query.items() if k != "before"}
    here = f"/console/settings/webhooks/{eid}"
    older = deliveries.get("next")
    return _page("settings_webhook.html", "webhooks", endpoint=endpoint, deliveries=deliveries["data"], query=query,
                 log_error=log_error, states=webhook_log.STATES, types=event_types.TYPES, live=True,
                 newest_url=f"{here}?{urlencode(filters)}" if "before" in query else None,
                 older_url=f"{here}?{urlencode({**filters, 'before': older})}" if older else None)


@bp.post("/settings/webhooks/<endpoint_id>/enabled")
@auth.page("admin")
def settings_webhook_enabled(endpoint_id):
    enabled = request.form.get("enabled") == "1"
    reply = api_client.patch(f"/v1/webhook-endpoints/{_uuid(endpoint_id)}", {"enabled": enabled})
    return _after(reply, f"/console/settings/webhooks/{endpoint_id}",
                  "Endpoint enabled: held deliveries go now" if enabled else
                  "Endpoint disabled: new deliveries are held until you enable it")


@bp.post("/settings/webhooks/<endpoint_id>/rotate")
@auth.page("admin")
def settings_webhook_rotate(endpoint_id):
    eid = _uuid(endpoint_id)
    try:
        grace_h = float(request.form.get("grace_hours") or 24)
    except ValueError:
        grace_h = -1
    if not 0 <= grace_h <= 168:
        return notify(redirect(f"/console/settings/webhooks/{eid}"),
                      "The previous secret's grace period is a number of hours from 0 to 168 (7 days).", "error")
    reply = api_client.post(f"/v1/webhook-endpoints/{eid}/rotate-secret", {"grace_period_s": int(grace_h * 3600)})
    if not reply.ok:
        return _after(reply, f"/console/settings/webhooks/{eid}", "")
    endpoint = _body(api_client.get(f"/v1/webhook-endpoints/{eid}"))
    return _page("settings_secret.html", "webhooks", endpoint=endpoint, secret=reply.body["secret"], created=False,
                 previous_until=reply.body.get("previous_secret_valid_until"))


@bp.post("/settings/webhooks/<endpoint_id>/delete")
@auth.page("admin")
def settings_webhook_delete(endpoint_id):
    reply = api_client.delete(f"/v1/webhook-endpoints/{_uuid(endpoint_id)}")
    return _after(reply, "/console/settings/webhooks", "Endpoint deleted, with its pending deliveries and its log")


@bp.post("/settings/webhooks/<endpoint_id>/deliveries/<delivery_id>/replay")
@auth.page("admin")
def settings_webhook_replay_one(endpoint_id, delivery_id):
    reply = api_client.post(f"/v1/webhook-endpoints/{_uuid(endpoint_id)}/deliveries/{_uuid(delivery_id)}/replay")
    return _after(reply, f"/console/settings/webhooks/{endpoint_id}",
                  "Delivery queued again (the same event, with the same webhook-id)")


@bp.post("/settings/webhooks/<endpoint_id>/replay")
@auth.page("admin")
def settings_webhook_replay_since(endpoint_id):
    eid = _uuid(endpoint_id)
    back = f"/console/settings/webhooks/{eid}"
    try:
        since = datetime.fromisoformat(request.form.get("since") or "").replace(tzinfo=timezone.utc)
    except ValueError:
        return notify(redirect(back), "Give the time to replay from (date and time, UTC).", "error")
    reply = api_client.post(f"/v1/webhook-endpoints/{eid}/replay",
                            {"since": since.isoformat(), "only_failed": request.form.get("only_failed") == "1"})
    if not reply.ok:
        return _after(reply, back, "")
    more = " (more remain: replay again from the last one)" if reply.body.get("more") else ""
    return notify(redirect(back), f"{reply.body['queued']} deliveries queued again{more}")

"""Console pages: settings, for admins. Channels and their health, API keys, webhook endpoints and their delivery
log, automation rules and settings, business hours, and the console's own users.

Everything except users goes through the REST API (api_client) as the signed-in admin, so the API's validation,
tenant walls and audit apply unchanged. Users have no REST API (they are the console's own): their pages call
gateway/console/users.py and invites.py, which write an audit row for each change.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode
from zoneinfo import available_timezones

from flask import abort, g, redirect, render_template, request
from werkzeug.exceptions import default_exceptions

from gateway import db, event_types, webhook_endpoints, webhook_log
from gateway.accounts import SCOPES, audit
from gateway.automation.hours import DAYS
from gateway.console import api_client, auth, invites, users
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
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
HOURS_SLOTS = 2          # opening intervals offered per weekday (a split shift); a schedule with more shows them all
MAX_HOURS_SLOTS = 8
NEW_RULE_EXAMPLE = {
    "name": "welcome", "kind": "welcome", "priority": 100, "enabled": True, "channel_id": None,
    "definition": {"actions": [{"type": "reply", "text": "Hello! Thanks for writing: a person will answer soon."}]},
}
_TIMEZONES = sorted(available_timezones())


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


def _errors(reply) -> dict[str, str]:
    """A refusal's field errors by dotted name (``/definition/name`` → ``definition.name``). Unlike
    Reply.field_errors this also reads ``field``, which the webhook endpoint errors use instead of ``pointer``."""
    out: dict[str, str] = {}
    for err in _problem_errors(reply):
        where = err.get("pointer") or err.get("parameter") or err.get("field") or ""
        out.setdefault(str(where).strip("/").replace("/", ".") or "_", str(err.get("detail") or "invalid"))
    return out


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
        found = {("scopes" if k.startswith("scopes") else k): v for k, v in _errors(reply).items()}
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
        found = {k.split(".")[0]: v for k, v in _errors(reply).items()}
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


# --- automation rules and settings -------------------------------------------------------------------------

def _rule_doc(rule: dict) -> dict:
    """A rule as its API body (what PUT takes back)."""
    return {k: rule[k] for k in ("name", "kind", "priority", "enabled", "channel_id", "definition")}


def _channel_names() -> dict[str, str]:
    return {str(c["id"]): f"{c['name']} ({c['kind']})" for c in _body(api_client.get("/v1/channels"))["data"]}


def _automations_page(status: int = 200, **context):
    rules = _body(api_client.get("/v1/automations"))["data"]
    settings = context.pop("settings", None) or _body(api_client.get("/v1/automation-settings"))
    return _page("settings_automations.html", "automations", status, rules=rules, settings=settings,
                 channel_names=_channel_names(), errors=context.pop("errors", {}), **context)


@bp.get("/settings/automations")
@auth.page("admin")
def settings_automations():
    return _automations_page()


@bp.post("/settings/automations/settings")
@auth.page("admin")
def settings_automation_settings():
    # Numbers as numbers, anything else as typed: the API says what each field takes, all fields at once.
    values = {name: int(raw) if re.fullmatch(r"-?\d{1,9}", raw) else raw
              for name in ("max_per_thread_per_hour", "handoff_after_unanswered")
              for raw in [(request.form.get(name) or "").strip()]}
    reply = api_client.put("/v1/automation-settings", values)
    if reply.status in (400, 422):
        return _automations_page(422, settings=values, errors=_errors(reply) or {"_": reply.detail})
    _body(reply)
    return notify(redirect("/console/settings/automations"), "Automation settings saved")


def _rule_form(source: str, status: int = 200, rule: dict | None = None, problems: list | None = None,
               problem: str | None = None):
    return _page("settings_automation.html", "automations", status, rule=rule, source=source,
                 problems=problems or [], problem=problem, channel_names=_channel_names())


def _save_rule(method: str, path: str, rule: dict | None):
    """Send the textarea's JSON to the API; on a refusal the same text comes back with each problem."""
    source = request.form.get("rule") or ""
    try:
        doc = json.loads(source)
    except json.JSONDecodeError as exc:
        return _rule_form(source, 400, rule, problem=f"This is not valid JSON: line {exc.lineno}, column "
                          f"{exc.colno}: {exc.msg}. Nothing was saved.")
    reply = api_client.call(method, path, json=doc)
    if reply.status in (400, 409, 422):
        problems = [(p or "(the rule)", d) for p, d in
                    ((str(e.get("pointer") or ""), str(e.get("detail"))) for e in _problem_errors(reply))]
        if reply.status == 409:
            problems = [("/name", reply.detail)]
        return _rule_form(source, reply.status, rule, problems=problems,
                          problem=f"The rule was not saved: {reply.detail}")
    saved = _body(reply)
    return notify(redirect(f"/console/settings/automations/{saved['id']}"),
                  "Rule created" if method == "POST" else "Rule saved")


@bp.get("/settings/automations/new")
@auth.page("admin")
def settings_automation_new():
    return _rule_form(json.dumps(NEW_RULE_EXAMPLE, indent=2))


@bp.post("/settings/automations/new")
@auth.page("admin")
def settings_automation_create():
    return _save_rule("POST", "/v1/automations", None)


@bp.get("/settings/automations/<rule_id>")
@auth.page("admin")
def settings_automation(rule_id):
    rule = _body(api_client.get(f"/v1/automations/{_uuid(rule_id)}"))
    return _rule_form(json.dumps(_rule_doc(rule), indent=2, ensure_ascii=False), rule=rule)


@bp.post("/settings/automations/<rule_id>")
@auth.page("admin")
def settings_automation_save(rule_id):
    rid = _uuid(rule_id)
    rule = _body(api_client.get(f"/v1/automations/{rid}"))
    return _save_rule("PUT", f"/v1/automations/{rid}", rule)


@bp.post("/settings/automations/<rule_id>/enabled")
@auth.page("admin")
def settings_automation_enabled(rule_id):
    rid = _uuid(rule_id)
    rule = _body(api_client.get(f"/v1/automations/{rid}"))
    enabled = request.form.get("enabled") == "1"
    reply = api_client.put(f"/v1/automations/{rid}", dict(_rule_doc(rule), enabled=enabled))
    back = "/console/settings/automations" if request.form.get("back") == "list" else \
        f"/console/settings/automations/{rid}"
    return _after(reply, back, f"Rule {rule['name']} {'enabled' if enabled else 'disabled'}")


@bp.post("/settings/automations/<rule_id>/delete")
@auth.page("admin")
def settings_automation_delete(rule_id):
    reply = api_client.delete(f"/v1/automations/{_uuid(rule_id)}")
    return _after(reply, "/console/settings/automations", "Rule deleted")


# --- business hours ----------------------------------------------------------------------------------------
# Business hours are the schedules of ``business_hours`` automation rules (gateway/automation/hours.py): the
# engine answers out of hours with the rule's actions, and the reports' out-of-hours shares use the same
# schedule. This form edits one such rule through the automations API, weekday by weekday.

_RANGE = re.compile(r"\s*(?:\.\.|–|—|\bto\b)\s*")


def _simple_reply(rule: dict | None) -> str | None:
    """The out-of-hours reply's text when the rule's actions are just one plain reply (the form can edit that);
    None when they are anything else (they are kept as they are)."""
    if rule is None:
        return ""
    actions = (rule["definition"] or {}).get("actions") or []
    if len(actions) == 1 and actions[0].get("type") == "reply" and isinstance(actions[0].get("text"), str):
        return actions[0]["text"]
    return None


def _hours_from_rule(rule: dict | None) -> dict:
    schedule = ((rule or {}).get("definition") or {}).get("schedule") or {}
    weekly = schedule.get("weekly") or {}
    days = {}
    for day in DAYS:
        slots = [{"open": s, "close": "00:00" if e == "24:00" else e} for s, e in weekly.get(day) or []]
        days[day] = slots + [{"open": "", "close": ""}] * max(0, HOURS_SLOTS - len(slots))
    holidays = []
    for h in schedule.get("holidays") or []:
        holidays.append(f"{h.get('from')} to {h.get('to')}" if isinstance(h, dict) else str(h))
    return {"name": (rule or {}).get("name", "business-hours"), "channel_id": str((rule or {}).get("channel_id") or ""),
            "timezone": schedule.get("timezone") or "", "days": days, "holidays": "\n".join(holidays),
            "reply": _simple_reply(rule), "exceptions": schedule.get("exceptions") or []}


def _time(value: str) -> str:
    return value.strip()[:5]


def _read_hours(rule: dict | None) -> tuple[dict, dict, dict, dict]:
    """(the form as typed, the rule's API body, where each weekly interval and holiday came from, clearer words
    for some errors). Every field the form finds wrong goes to the API as typed, and the API refuses it too;
    so one answer lists every problem of the form at once, and nothing is saved."""
    f = request.form
    keep = _hours_from_rule(rule)
    form = {"name": (f.get("name") or "").strip(), "channel_id": f.get("channel_id") or "",
            "timezone": (f.get("timezone") or "").strip(), "holidays": f.get("holidays") or "",
            "reply": None if keep["reply"] is None else (f.get("reply") or "").strip(),
            "exceptions": keep["exceptions"], "days": {}}
    errors: dict[str, str] = {}
    weekly: dict[str, list] = {}
    origin: dict[str, list[int]] = {}
    for day in DAYS:
        slots, intervals, came_from = [], [], []
        for i in range(MAX_HOURS_SLOTS):
            if f"{day}-{i}-open" not in f:
                break
            opens, closes = _time(f.get(f"{day}-{i}-open", "")), _time(f.get(f"{day}-{i}-close", ""))
            slots.append({"open": opens, "close": closes})
            if not opens and not closes:
                continue
            if not opens or not closes:   # sent as typed: the API refuses it too, so nothing is saved
                errors[f"{day}-{i}"] = "Give both the opening and the closing time, or neither (closed)."
            # 00:00 as a closing time is midnight at the end of the day (a time field cannot say 24:00)
            intervals.append([opens, "24:00" if closes == "00:00" else closes])
            came_from.append(i)
        form["days"][day] = slots or [{"open": "", "close": ""}] * HOURS_SLOTS
        if intervals:
            weekly[day], origin[day] = intervals, came_from
    holidays, lines = [], []
    for n, line in enumerate(form["holidays"].splitlines(), start=1):
        if not line.strip():
            continue
        parts = _RANGE.split(line.strip(), maxsplit=1)
        holidays.append({"from": parts[0], "to": parts[1]} if len(parts) == 2 else parts[0])
        lines.append(n)
    origin["holidays"] = lines
    if not form["name"]:
        errors["name"] = "Give the schedule a name (it is the rule's name, unique in the account)."
    if form["reply"] is not None and not form["reply"]:
        errors["reply"] = "Write the reply a customer gets when they write while you are closed."
    schedule: dict = {"weekly": weekly}
    if form["timezone"]:
        schedule["timezone"] = form["timezone"]
    if holidays:
        schedule["holidays"] = holidays
    if form["exceptions"]:
        schedule["exceptions"] = form["exceptions"]
    actions = rule["definition"]["actions"] if form["reply"] is None else [{"type": "reply", "text": form["reply"]}]
    doc = {"name": form["name"], "kind": "business_hours", "priority": (rule or {}).get("priority", 10),
           "enabled": (rule or {}).get("enabled", True), "channel_id": form["channel_id"] or None,
           "definition": {"schedule": schedule, "actions": actions}}
    return form, doc, origin, errors


def _slot(places: list | None, index: str):
    """Where the ``index``-th item sent came from in the form (a slot number, a line number), or None."""
    if places is None or not index.isdigit() or int(index) >= len(places):
        return None
    return places[int(index)]


def _hours_errors(reply, origin: dict) -> dict[str, str]:
    """The API's problems (JSON pointers into the rule) placed next to the form's fields."""
    out: dict[str, str] = {}
    for err in _problem_errors(reply):
        parts = str(err.get("pointer") or "").strip("/").split("/")
        detail = str(err.get("detail") or "invalid")
        where = "_"
        if parts[0] in ("name", "channel_id"):
            where = parts[0]
        elif parts[:2] == ["definition", "actions"]:
            where = "reply"
        elif parts[:2] == ["definition", "schedule"]:
            rest = parts[2:]
            if rest[:1] == ["timezone"]:
                where = "timezone"
            elif rest[:1] == ["weekly"] and len(rest) >= 3 and _slot(origin.get(rest[1]), rest[2]) is not None:
                where = f"{rest[1]}-{_slot(origin[rest[1]], rest[2])}"
            elif rest[:1] == ["weekly"]:
                where = "weekly"
            elif rest[:1] == ["holidays"] and len(rest) >= 2 and _slot(origin["holidays"], rest[1]) is not None:
                where, detail = "holidays", f"line {_slot(origin['holidays'], rest[1])}: {detail}"
            elif rest[:1] in (["holidays"], ["exceptions"]):
                where = rest[0]
        out.setdefault(where, detail)
    return out


def _hours_form(rule: dict | None, form: dict, status: int = 200, errors: dict | None = None):
    account = _body(api_client.get("/v1/account"))
    return _page("settings_hours_form.html", "hours", status, rule=rule, form=form, errors=errors or {},
                 days=DAYS, day_names=DAY_NAMES, channel_names=_channel_names(), timezones=_TIMEZONES,
                 account_tz=account.get("timezone") or "UTC")


def _hours_rule(rule_id: str) -> dict:
    rule = _body(api_client.get(f"/v1/automations/{_uuid(rule_id)}"))
    if rule["kind"] != "business_hours":
        abort(404)
    return rule


@bp.get("/settings/hours")
@auth.page("admin")
def settings_hours():
    rules = [r for r in _body(api_client.get("/v1/automations"))["data"] if r["kind"] == "business_hours"]
    account = _body(api_client.get("/v1/account"))
    return _page("settings_hours.html", "hours", rules=rules, days=DAYS, day_names=DAY_NAMES,
                 channel_names=_channel_names(), account_tz=account.get("timezone") or "UTC")


@bp.get("/settings/hours/new")
@auth.page("admin")
def settings_hours_new():
    return _hours_form(None, _hours_from_rule(None))


@bp.get("/settings/hours/<rule_id>")
@auth.page("admin")
def settings_hours_edit(rule_id):
    rule = _hours_rule(rule_id)
    return _hours_form(rule, _hours_from_rule(rule))


def _save_hours(rule: dict | None):
    form, doc, origin, clearer = _read_hours(rule)
    if rule is None:
        reply = api_client.post("/v1/automations", doc)
    else:
        reply = api_client.put(f"/v1/automations/{rule['id']}", doc)
    if reply.status == 409:
        return _hours_form(rule, form, 409, {"name": reply.detail, **clearer})
    if reply.status in (400, 422):
        return _hours_form(rule, form, 422, {**(_hours_errors(reply, origin) or {"_": reply.detail}), **clearer})
    _body(reply)
    return notify(redirect("/console/settings/hours"), f"Business hours {form['name']} saved")


@bp.post("/settings/hours/new")
@auth.page("admin")
def settings_hours_create():
    return _save_hours(None)


@bp.post("/settings/hours/<rule_id>")
@auth.page("admin")
def settings_hours_save(rule_id):
    return _save_hours(_hours_rule(rule_id))


# --- users -------------------------------------------------------------------------------------------------
# The console's own people (no REST API): the service functions audit every change with the admin as actor.

def _users_page(status: int = 200, **context):
    with db.connection() as conn:
        people = users.list_users(conn, account_id=g.console_user.account_id)
    context.setdefault("form", {"email": "", "name": "", "role": "agent"})
    return _page("settings_users.html", "users", status, people=people, roles=users.ROLES,
                 errors=context.pop("errors", {}), **context)


def _person(conn, user_id: str) -> dict:
    found = users.get_user(conn, account_id=g.console_user.account_id, user_id=_uuid(user_id))
    if found is None:
        abort(404)
    return found


def _is_me(user_id) -> bool:
    return str(user_id) == str(g.console_user.user_id)


@bp.get("/settings/users")
@auth.page("admin")
def settings_users():
    return _users_page()


@bp.post("/settings/users/invite")
@auth.page("admin")
def settings_user_invite():
    me = g.console_user
    form = {"email": (request.form.get("email") or "").strip(), "name": (request.form.get("name") or "").strip(),
            "role": request.form.get("role") or "agent"}
    errors = {}
    problem = users.email_problem(form["email"])
    if problem:
        errors["email"] = f"Give {problem}."
    elif users.normal_email(form["email"]) == users.normal_email(me.email):
        errors["email"] = "That is you. You are signed in already; invite someone else."
    if form["role"] not in users.ROLES:
        errors["role"] = f"Choose one of {', '.join(users.ROLES)}."
    if len(form["name"]) > 200:
        errors["name"] = "At most 200 characters."
    if errors:
        return _users_page(400, form=form, errors=errors)
    try:
        with db.connection() as conn:
            person, token, created = invites.invite(conn, account_id=me.account_id, email=form["email"],
                                                    role=form["role"], name=form["name"] or None, actor=me.actor)
    except users.EmailTaken:
        # Emails are unique across the gateway; say no more than that it cannot be used here.
        return _users_page(409, form=form, errors={"email": "This email address cannot be invited to this account. "
                                                            "Use another address."})
    return _page("settings_invited.html", "users", 201, person=person, created=created,
                 link=invites.link_url(request.host_url, token), hours=int(users.LINK_TTL.total_seconds() // 3600))


@bp.post("/settings/users/<user_id>/role")
@auth.page("admin")
def settings_user_role(user_id):
    role = request.form.get("role")
    if role not in users.ROLES:
        abort(400, f"the role is one of {', '.join(users.ROLES)}")
    if _is_me(user_id):
        return notify(redirect("/console/settings/users"), "You cannot change your own role: another admin can.",
                      "error")
    with db.connection() as conn:
        person = _person(conn, user_id)
        if person["role"] == role:
            return notify(redirect("/console/settings/users"), f"{person['email']} is already {role}", "info")
        users.update_user(conn, account_id=g.console_user.account_id, user_id=person["id"], actor=g.console_user.actor,
                          role=role)
    return notify(redirect("/console/settings/users"),
                  f"{person['email']} is now {role}; their sessions ended, so the new role holds from their next "
                  "sign-in")


@bp.post("/settings/users/<user_id>/state")
@auth.page("admin")
def settings_user_state(user_id):
    disable = request.form.get("disabled") == "1"
    if _is_me(user_id):
        return notify(redirect("/console/settings/users"), "You cannot disable yourself: another admin can.", "error")
    with db.connection() as conn:
        person = _person(conn, user_id)
        users.update_user(conn, account_id=g.console_user.account_id, user_id=person["id"], actor=g.console_user.actor,
                          disabled=disable)
    return notify(redirect("/console/settings/users"),
                  f"{person['email']} disabled: signed out and cannot sign in" if disable else
                  f"{person['email']} enabled: they can sign in again")


@bp.post("/settings/users/<user_id>/signout")
@auth.page("admin")
def settings_user_signout(user_id):
    me = g.console_user
    with db.connection() as conn:
        person = _person(conn, user_id)
        ended = users.revoke_sessions(conn, account_id=me.account_id, user_id=person["id"])
        audit(conn, account_id=me.account_id, actor=me.actor, action="console_user.sessions_revoked",
              target_type="console_user", target_id=person["id"], detail={"sessions": ended})
    return notify(redirect("/console/settings/users"),
                  f"{person['email']} signed out everywhere ({ended} session{'s' if ended != 1 else ''} ended)")

"""Console settings pages (admins): automation rules and settings, and business hours (business_hours rules),
through the REST API's /v1/automations and /v1/automation-settings."""
from __future__ import annotations

import json
import re
from zoneinfo import available_timezones

from flask import abort, redirect, request

from gateway.automation.hours import DAYS
from gateway.console import api_client, auth
from gateway.console.blueprint import bp, notify
# The settings pages' shared helpers (sub-navigation, API answers to form errors):
from gateway.console.settings_views import _after, _body, _page, _problem_errors, _uuid

DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
HOURS_SLOTS = 2          # opening intervals offered per weekday (a split shift); a schedule with more shows them all
MAX_HOURS_SLOTS = 8
NEW_RULE_EXAMPLE = {
    "name": "welcome", "kind": "welcome", "priority": 100, "enabled": True, "channel_id": None,
    "definition": {"actions": [{"type": "reply", "text": "Hello! Thanks for writing: a person will answer soon."}]},
}
_TIMEZONES = sorted(available_timezones())


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
        return _automations_page(422, settings=values, errors=reply.field_errors() or {"_": reply.detail})
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

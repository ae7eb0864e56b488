"""REST views for automation: rules, the account's automation settings, a thread's handler and decisions."""
from __future__ import annotations

from flask import request
from psycopg.types.json import Jsonb

from gateway.api.views import bp
from gateway.automation import engine, rules
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem



def _view(row: dict) -> dict:
    return {"id": row["id"], "channel_id": row["channel_id"], "name": row["name"], "priority": row["priority"],
            "enabled": row["enabled"], "kind": row["kind"], "definition": row["definition"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def _valid(conn, principal, doc: dict) -> dict:
    tz = conn.execute("SELECT timezone FROM accounts WHERE id = %s", (principal.account_id,)).fetchone()["timezone"]
    found = rules.problems(doc, conn=conn, account_id=principal.account_id, default_tz=tz)
    if found:
        raise Problem(422, "Invalid Rule", f"{len(found)} problem(s): see errors for each one and how to fix it",
                      slug="invalid-rule", errors=found)
    return doc


def _taken(name: str) -> Problem:
    return Problem(409, "Name Taken", f"another rule is named {name!r}; names are unique in the account",
                   slug="rule-name-taken")


@bp.get("/automations")
@api(scope="admin")
def list_automations(conn, principal):
    return {"data": [_view(r) for r in rules.list_rules(conn, account_id=principal.account_id)]}


@bp.post("/automations")
@api(scope="admin")
def create_automation(conn, principal):
    doc = _valid(conn, principal, json_object())
    try:
        row = rules.create(conn, account_id=principal.account_id, doc=doc)
    except rules.NameTaken:
        raise _taken(doc["name"]) from None
    return _view(row), 201


@bp.get("/automations/<rule_id>")
@api(scope="admin")
def get_automation(conn, principal, rule_id):
    row = rules.get(conn, account_id=principal.account_id, rule_id=parse_uuid(rule_id, "automation"))
    if row is None:
        raise Problem(404, "Not Found", f"no automation with id {rule_id} in this account")
    return _view(row)


@bp.put("/automations/<rule_id>")
@api(scope="admin")
def replace_automation(conn, principal, rule_id):
    rid = parse_uuid(rule_id, "automation")
    doc = _valid(conn, principal, json_object())
    try:
        row = rules.replace(conn, account_id=principal.account_id, rule_id=rid, doc=doc)
    except rules.NameTaken:
        raise _taken(doc["name"]) from None
    if row is None:
        raise Problem(404, "Not Found", f"no automation with id {rule_id} in this account")
    return _view(row)


@bp.delete("/automations/<rule_id>")
@api(scope="admin")
def delete_automation(conn, principal, rule_id):
    if not rules.delete(conn, account_id=principal.account_id, rule_id=parse_uuid(rule_id, "automation")):
        raise Problem(404, "Not Found", f"no automation with id {rule_id} in this account")
    return "", 204


@bp.get("/automation-settings")
@api(scope="admin")
def get_automation_settings(conn, principal):
    stored = conn.execute("SELECT automation_settings FROM accounts WHERE id = %s",
                          (principal.account_id,)).fetchone()["automation_settings"]
    return engine.settings_of(stored)


@bp.put("/automation-settings")
@api(scope="admin")
def put_automation_settings(conn, principal):
    """Set any of the settings; those left out keep their value."""
    doc = json_object()
    names = ", ".join(engine.SETTINGS)
    errors = [{"pointer": f"/{k}", "detail": f"unknown field; use {names}"} for k in doc if k not in engine.SETTINGS]
    for name, (_, lo, hi) in engine.SETTINGS.items():
        value = doc.get(name)
        if name in doc and (not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi):
            errors.append({"pointer": f"/{name}", "detail": f"an integer from {lo} to {hi}"})
    if not doc:
        errors.append({"pointer": "", "detail": f"give at least one of {names}"})
    if errors:
        raise Problem(422, "Validation Failed", f"{len(errors)} problem(s)", slug="validation-failed", errors=errors)
    row = conn.execute("UPDATE accounts SET automation_settings = automation_settings || %s WHERE id = %s "
                       "RETURNING automation_settings", (Jsonb(doc), principal.account_id)).fetchone()
    return engine.settings_of(row["automation_settings"])


def _thread(conn, principal, thread_id: str) -> dict:
    row = conn.execute("SELECT id, handler, handed_off_at FROM threads WHERE account_id = %s AND id = %s",
                       (principal.account_id, parse_uuid(thread_id, "thread"))).fetchone()
    if row is None:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    return row


@bp.post("/threads/<thread_id>/handler")
@api(scope="messages:send")
def set_thread_handler(conn, principal, thread_id):
    thread = _thread(conn, principal, thread_id)
    handler = json_object().get("handler")
    if handler not in ("human", "bot"):
        raise Problem(422, "Validation Failed", "handler is 'human' (hand off) or 'bot' (hand back)",
                      slug="validation-failed", errors=[{"pointer": "/handler", "detail": "human or bot"}])
    if handler == "human":
        changed = engine.hand_off(conn, account_id=principal.account_id, thread_id=thread["id"], reason="api")
    else:
        changed = engine.hand_back(conn, account_id=principal.account_id, thread_id=thread["id"])
    if changed:
        engine.record_api_decision(conn, account_id=principal.account_id, thread_id=thread["id"],
                                   outcome="handed_off" if handler == "human" else "handed_back")
    after = _thread(conn, principal, thread_id)
    return {"thread_id": after["id"], "handler": after["handler"], "handed_off_at": after["handed_off_at"],
            "changed": changed}


@bp.get("/threads/<thread_id>/decisions")
@api(scope="messages:read")
def list_thread_decisions(conn, principal, thread_id):
    thread = _thread(conn, principal, thread_id)
    rows = engine.list_decisions(conn, account_id=principal.account_id, thread_id=thread["id"],
                                 limit=min(max(request.args.get("limit", 100, type=int), 1), 500))
    return {"data": rows}

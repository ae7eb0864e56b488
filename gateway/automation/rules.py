"""Automation rules: their shape, validation (every problem with a JSON pointer), storage and matching.

A rule (API body, or one document of a YAML/JSON file)::

    name: opening-hours          # unique in the account
    kind: business_hours         # welcome | business_hours | keyword | handoff | flow
    priority: 10                 # lower acts first; the first rule that matches acts alone
    enabled: true
    channel_id: null             # a channel id: only messages arriving there
    definition: {...}

Definitions by kind:

- ``welcome``: ``{"reopen_after_days": 30, "actions": [...]}``: the first inbound message of a new contact,
  or the first of a thread whose previous inbound message is older than ``reopen_after_days`` (optional).
- ``business_hours``: ``{"schedule": {...} (see hours.py), "actions": [...]}``: out of hours, once per thread
  and closed period. Reply texts may say ``{next_open}``, ``{next_open_day}``, ``{next_open_date}``,
  ``{next_open_time}``, ``{timezone}``.
- ``keyword``: ``{"match": "whole" | "contains" | "regex", "keywords": [...] | "pattern": "...",
  "language": "es" (optional), "actions": [...]}``. Matching ignores case, accents and surrounding
  punctuation; ``contains`` matches whole words or phrases inside the message; a regex is searched in the
  message with accents removed (write it without accents) and IGNORECASE. With ``language`` the rule acts
  only for contacts in that language (the contact's, else the account's default; unknown: it acts).
- ``handoff``: ``{"keywords": {"en": [...], ...} (optional, replaces the defaults of those languages),
  "actions": [...] (optional, e.g. a reply before the hand-off)}``: the customer asks for a person; the
  thread's handler becomes ``human``.
- ``flow``: a menu or small flow (see flows.py): ``{"trigger": {...keyword fields} (optional), "start",
  "steps", "expires_after_minutes" (optional)}``.

Actions: ``{"type": "reply", "text": "..." | {"en": "...", "es": "..."}}``, ``{"type": "template",
"name", "language" (optional), "parameters" (optional)}``, ``{"type": "set_attribute", "name", "value"}``,
``{"type": "set_tag", "tag"}``, ``{"type": "assign", "team"}``, ``{"type": "handoff"}``, ``{"type": "flow",
"name"}`` (starts the flow of that name: its first step is sent after the rule's other messages).
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from gateway.automation import flows, hours, text_match
from gateway.automation.text_match import MAX_TEXT, fold
from gateway.db import uuid7

KINDS = ("welcome", "business_hours", "keyword", "handoff", "flow")
ACTIONS = ("reply", "template", "set_attribute", "set_tag", "assign", "handoff", "flow")

# --- validation ------------------------------------------------------------------------------------

def problems(doc, *, conn=None, account_id=None, default_tz: str | None = None,
             flow_names: set[str] | None = None) -> list[dict]:
    """Every problem of a rule as {pointer, detail}. With ``conn``, templates are checked against the
    account's catalog (exists, APPROVED), the channel against the account and a flow action against the
    account's flows; ``flow_names`` adds flows known elsewhere (the other files of a load)."""
    out: list[dict] = []

    def bad(pointer, detail):
        out.append({"pointer": pointer, "detail": detail})

    if not isinstance(doc, dict):
        return [{"pointer": "", "detail": "a rule is an object with name, kind, definition"}]
    for name in doc:
        if name not in ("name", "kind", "priority", "enabled", "channel_id", "definition", "id"):
            bad(f"/{name}", "unknown field; use name, kind, priority, enabled, channel_id, definition")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        bad("/name", "required: a name of 1 to 200 characters")
    kind = doc.get("kind")
    if kind not in KINDS:
        bad("/kind", f"required: one of {', '.join(KINDS)}")
    priority = doc.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -10**6 <= priority <= 10**6:
        bad("/priority", "an integer (lower acts first)")
    if not isinstance(doc.get("enabled", True), bool):
        bad("/enabled", "true or false")
    channel_id = doc.get("channel_id")
    waba = None
    if channel_id is not None:
        import uuid
        try:
            channel_uuid = uuid.UUID(str(channel_id))
        except ValueError:
            bad("/channel_id", "a channel id (uuid) or null for every channel")
            channel_uuid = None
        if channel_uuid is not None and conn is not None:
            row = conn.execute("SELECT group_id FROM channels WHERE account_id = %s AND id = %s",
                               (account_id, channel_uuid)).fetchone()
            if row is None:
                bad("/channel_id", f"no channel with id {channel_id} in this account")
            else:
                waba = row["group_id"]
    definition = doc.get("definition")
    if not isinstance(definition, dict):
        bad("/definition", "required: an object (its fields depend on the kind)")
        return out
    if kind == "flow":
        flows.problems(definition, bad)
    elif kind in KINDS:
        known = None
        if conn is not None or flow_names is not None:
            known = set(flow_names or ())
            if conn is not None:
                known |= {r["name"] for r in conn.execute(
                    "SELECT name FROM automations WHERE account_id = %s AND kind = 'flow'", (account_id,))}
        _definition(kind, definition, bad, conn, account_id, waba, default_tz, known)
    return out


_FIELDS = {
    "welcome": ("reopen_after_days", "actions"),
    "business_hours": ("schedule", "actions"),
    "keyword": ("match", "keywords", "pattern", "language", "actions"),
    "handoff": ("keywords", "actions"),
}


def _definition(kind, d, bad, conn, account_id, waba, default_tz, flow_names) -> None:
    for name in d:
        if name not in _FIELDS[kind]:
            bad(f"/definition/{name}", f"unknown field for a {kind} rule; use {', '.join(_FIELDS[kind])}")
    if kind == "welcome":
        days = d.get("reopen_after_days")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 1):
            bad("/definition/reopen_after_days", "a whole number of days (1 or more), or leave it out")
    elif kind == "business_hours":
        if "schedule" not in d:
            bad("/definition/schedule", "required: the weekly schedule (see the README's Automation section)")
        else:
            for p in hours.problems(d["schedule"], "/definition/schedule", default_tz=default_tz):
                bad(p["pointer"], p["detail"])
    elif kind == "keyword":
        text_match.trigger_problems(d, "/definition", bad)
    elif kind == "handoff":
        words = d.get("keywords")
        if words is not None:
            if not isinstance(words, dict):
                bad("/definition/keywords", "an object of language → list of words or phrases")
            else:
                for lang, lst in words.items():
                    if not isinstance(lst, list) or not all(isinstance(w, str) and fold(w) for w in lst):
                        bad(f"/definition/keywords/{lang}", "a list of non-empty words or phrases")
    actions = d.get("actions")
    if actions is None and kind == "handoff":
        return
    if not isinstance(actions, list) or not actions:
        bad("/definition/actions", "required: a non-empty list of actions (" + ", ".join(ACTIONS) + ")")
        return
    for i, action in enumerate(actions):
        _action(action, f"/definition/actions/{i}", bad, conn, account_id, waba, flow_names)
    sends = [a for a in actions if isinstance(a, dict) and a.get("type") in ("reply", "template", "flow")]
    if sum(isinstance(a, dict) and a.get("type") == "flow" for a in actions) > 1:
        bad("/definition/actions", "at most one flow action: a thread is in one flow at a time")
    if len(sends) > 3:
        bad("/definition/actions", "at most 3 messages per rule: a wall of automated messages reads as spam")


def _action(a, p, bad, conn, account_id, waba, flow_names) -> None:
    if not isinstance(a, dict):
        bad(p, "an action is an object with a type")
        return
    t = a.get("type")
    if t not in ACTIONS:
        bad(f"{p}/type", f"unknown action {t!r}; use one of {', '.join(ACTIONS)}")
        return
    if t == "reply":
        text = a.get("text")
        texts = text.items() if isinstance(text, dict) else [(None, text)]
        if not text:
            bad(f"{p}/text", "required: the reply's text, or an object of language → text")
        for lang, value in texts:
            where = f"{p}/text" + (f"/{lang}" if lang else "")
            if not isinstance(value, str) or not value.strip():
                bad(where, "required: a non-empty text")
            elif len(value) > MAX_TEXT:
                bad(where, f"at most {MAX_TEXT} characters")
    elif t == "template":
        name = a.get("name")
        if not isinstance(name, str) or not name:
            bad(f"{p}/name", "required: the template's name in the catalog")
        elif conn is not None:
            _template(conn, account_id, waba, name, a.get("language"), p, bad)
        if a.get("language") is not None and not isinstance(a.get("language"), str):
            bad(f"{p}/language", "a language code, or leave it out to pick the contact's")
        if a.get("parameters") is not None and not isinstance(a["parameters"], (list, dict)):
            bad(f"{p}/parameters", "a list (positional) or an object (named) of parameter values")
    elif t == "set_attribute":
        name = a.get("name")
        if not isinstance(name, str) or not text_match.ATTRIBUTE.fullmatch(name):
            bad(f"{p}/name", "required: an attribute name (letters, digits, _ . -; at most 64)")
        elif name == "tags":
            bad(f"{p}/name", "'tags' is kept by set_tag actions; use set_tag")
        if "value" not in a or isinstance(a.get("value"), (dict, list)):
            bad(f"{p}/value", "required: a string, number, boolean or null")
    elif t == "set_tag":
        tag = a.get("tag")
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 64:
            bad(f"{p}/tag", "required: a tag of 1 to 64 characters")
    elif t == "assign":
        if not text_match.valid_team(a.get("team")):
            bad(f"{p}/team", "required: the team's name (1 to 64 characters)")
    elif t == "flow":
        name = a.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(f"{p}/name", "required: the name of the flow to start")
        elif flow_names is not None and name.strip() not in flow_names:
            bad(f"{p}/name", f"no flow named {name!r} in this account (create it first, or load it with this rule)")


def _template(conn, account_id, waba, name, language, p, bad) -> None:
    from templates_catalog import store
    rows = store.translations(conn, account_id=account_id, name=name, waba_id=waba)
    if not rows:
        bad(f"{p}/name", f"no template {name!r} in the account's catalog (sync it: POST /v1/templates/sync)")
        return
    if language:
        row = next((r for r in rows if r["language"] == language), None)
        if row is None:
            bad(f"{p}/language", f"template {name!r} has no {language!r} translation "
                                 f"(it has {', '.join(sorted(r['language'] for r in rows))})")
        elif row["status"] != "APPROVED":
            bad(f"{p}/name", f"template {name!r} ({language}) is {row['status']}; only APPROVED templates can "
                             "be sent")
    elif not any(r["status"] == "APPROVED" for r in rows):
        bad(f"{p}/name", f"template {name!r} has no APPROVED translation")


# --- storage ---------------------------------------------------------------------------------------

_COLUMNS = "id, channel_id, name, priority, enabled, kind, definition, created_at, updated_at"


class NameTaken(Exception):
    pass


def _row_values(doc: dict) -> tuple:
    return (doc.get("channel_id"), doc["name"].strip(), doc.get("priority", 100), doc.get("enabled", True),
            doc["kind"], Jsonb(doc["definition"]))


def create(conn, *, account_id, doc: dict) -> dict:
    row = conn.execute(
        f"INSERT INTO automations (account_id, id, channel_id, name, priority, enabled, kind, definition) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, name) DO NOTHING RETURNING {_COLUMNS}",
        (account_id, uuid7(), *_row_values(doc))).fetchone()
    if row is None:
        raise NameTaken(doc["name"])
    return row


def replace(conn, *, account_id, rule_id, doc: dict) -> dict | None:
    taken = conn.execute("SELECT id FROM automations WHERE account_id = %s AND name = %s AND id <> %s",
                         (account_id, doc["name"].strip(), rule_id)).fetchone()
    if taken is not None:
        raise NameTaken(doc["name"])
    return conn.execute(
        f"UPDATE automations SET channel_id = %s, name = %s, priority = %s, enabled = %s, kind = %s, "
        f"definition = %s, updated_at = now() WHERE account_id = %s AND id = %s RETURNING {_COLUMNS}",
        (*_row_values(doc), account_id, rule_id)).fetchone()


def upsert_by_name(conn, *, account_id, doc: dict) -> tuple[dict, bool]:
    """For file loads: the rule named so is replaced, or created. (row, created)."""
    found = conn.execute("SELECT id FROM automations WHERE account_id = %s AND name = %s",
                         (account_id, doc["name"].strip())).fetchone()
    if found is None:
        return create(conn, account_id=account_id, doc=doc), True
    return replace(conn, account_id=account_id, rule_id=found["id"], doc=doc), False


def get(conn, *, account_id, rule_id) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM automations WHERE account_id = %s AND id = %s",
                        (account_id, rule_id)).fetchone()


def delete(conn, *, account_id, rule_id) -> bool:
    return conn.execute("DELETE FROM automations WHERE account_id = %s AND id = %s",
                        (account_id, rule_id)).rowcount > 0


def list_rules(conn, *, account_id) -> list[dict]:
    return conn.execute(f"SELECT {_COLUMNS} FROM automations WHERE account_id = %s ORDER BY priority, id",
                        (account_id,)).fetchall()


def active_for(conn, *, account_id, channel_id) -> list[dict]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE account_id = %s AND enabled "
        "AND (channel_id IS NULL OR channel_id = %s) ORDER BY priority, id", (account_id, channel_id)).fetchall()



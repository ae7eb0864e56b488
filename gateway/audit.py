"""The audit log (GDPR Art. 30 and 32): who read or changed personal data, and when - never the data itself.

Rows are written by ``gateway.accounts.audit`` (changes), by the API's read hook (``record_read``: every
GET of a route that exposes personal data), by exports and by key rotation. A row names the actor (an
API key as ``api_key:<id>``, or ``cli``), an action, and a target by type and id; ``detail`` holds counts,
field names and ids only.
"""
from __future__ import annotations

import re
import uuid

from gateway.accounts import audit

# First path segment under /v1 → the kind of personal data its GET routes expose. Deciding by resource
# rather than by listing each route keeps routes added later (consents, a contact's sub-resources) audited
# without touching this file; /v1/channels, /v1/templates, /v1/account and the like expose none.
PERSONAL_RESOURCES = {"contacts": "contact", "threads": "thread", "messages": "message", "media": "media",
                      "uploads": "upload", "notices": "notice", "consents": "consent",
                      "campaigns": "campaign"}   # a campaign's recipients list their addresses
# Query parameters that identify whose data a list read returned; only these are kept, and only when their
# value is an id or a short word, so a query string can never carry personal data into the log.
_KEPT_QUERY = ("contact_id", "thread_id", "channel_id", "status", "state", "topic", "purpose")
_WORD = re.compile(r"^[a-z_]{1,32}$")


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def read_target(rule: str, view_args: dict, args) -> tuple[str, str | None, dict] | None:
    """(target type, target id, detail) of a GET on ``rule``, or None when the route exposes no personal data."""
    parts = rule.split("/")
    if len(parts) < 3 or parts[1] != "v1" or parts[2] not in PERSONAL_RESOURCES:
        return None
    target_type, target_id = PERSONAL_RESOURCES[parts[2]], None
    # The first id in the path names what was read: /v1/contacts/<contact_id>/consents reads a contact's data.
    for part in parts[3:]:
        if part.startswith("<") and part.endswith(">"):
            name = part[1:-1].split(":")[-1]
            if name.endswith("_id") and name in view_args:
                target_type, target_id = name[:-3], str(view_args[name])
                break
    detail = {}
    for name in _KEPT_QUERY:
        value = args.get(name)
        if value and (_uuid(value) is not None or _WORD.match(value)):
            detail[name] = value
    if target_id is None and _uuid(detail.get("contact_id")) is not None:
        # A list filtered to one contact (GET /v1/threads?contact_id=) reads that contact's data.
        target_type, target_id = "contact", detail["contact_id"]
    return target_type, target_id, detail


def record_read(conn, *, principal, rule: str, view_args: dict, args) -> bool:
    """One row for a successful API read of personal data, in the request's own transaction."""
    found = read_target(rule, view_args, args)
    if found is None:
        return False
    target_type, target_id, detail = found
    audit(conn, account_id=principal.account_id, actor=principal.actor, action=f"read:{rule}",
          target_type=target_type, target_id=target_id, detail=detail)
    return True


def record_rotation(conn, *, since, master_kid: str, actor: str = "cli") -> int:
    """One ``keys.rotated`` row per account whose data keys were re-wrapped under ``master_kid`` since
    ``since`` (a database time taken before the rotation began); returns how many accounts.

    Rotation is global, but each account's admins read only their own log: they see that, when and how
    many of their keys were re-wrapped."""
    rows = conn.execute(
        "SELECT account_id, count(*) AS n FROM data_keys WHERE rewrapped_at >= %s AND master_kid = %s "
        "GROUP BY account_id", (since, master_kid)).fetchall()
    for row in rows:
        audit(conn, account_id=row["account_id"], actor=actor, action="keys.rotated", target_type="master_key",
              target_id=master_kid, detail={"rewrapped": row["n"]})
    return len(rows)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_entries(conn, *, account_id, action: str | None = None, actor: str | None = None,
                 target_type: str | None = None, target_id: str | None = None, since=None, until=None,
                 limit: int = 50, before=None) -> list[dict]:
    """The account's audit rows, newest first. ``action`` ending in ``*`` matches a prefix (``read:*``,
    ``contact.*``); ``actor`` takes an API key id bare or as ``api_key:<id>``; ``since`` is inclusive,
    ``until`` exclusive; ``before`` is the (at, id) of the previous page's last row."""
    where, params = ["account_id = %s"], [account_id]
    if action:
        if action.endswith("*"):
            where.append("action LIKE %s"), params.append(_like_prefix(action[:-1]))
        else:
            where.append("action = %s"), params.append(action)
    if actor:
        where.append("actor = %s"), params.append(f"api_key:{actor}" if _uuid(actor) is not None else actor)
    if target_type:
        where.append("target_type = %s"), params.append(target_type)
    if target_id:
        where.append("target_id = %s"), params.append(target_id)
    if since is not None:
        where.append("at >= %s"), params.append(since)
    if until is not None:
        where.append("at < %s"), params.append(until)
    if before is not None:
        where.append("(at, id) < (%s, %s)"), params.extend(before)
    return conn.execute(
        f"SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log WHERE {' AND '.join(where)} "
        "ORDER BY at DESC, id DESC LIMIT %s", (*params, limit)).fetchall()


def database_now(conn):
    """The database's clock (this transaction's start): rows stamped by other transactions compare to it."""
    return conn.execute("SELECT now() AS now").fetchone()["now"]

"""The 360° contact timeline: everything that happened with a customer, across every channel and thread, in
time order (``GET /v1/contacts/{id}/timeline``).

Kinds of items, and where they come from:

- ``message``: every message in and out (``messages``), text and content decrypted; at its provider time.
- ``status``: every status a message went through (``message_events``: accepted, sent, delivered, read,
  failed with its error…), at the provider's time when it gave one.
- ``note``: internal notes (``thread_notes``), decrypted.
- ``thread_event``: status changes, assignments and hand-offs with who made them (``thread_events``).
- ``consent``: grants and withdrawals (``consent_events``), at the time they happened.
- ``survey_answer``: CSAT/NPS/CES scores and comments (``survey_responses``).
- ``campaign``: what a campaign did with the contact (``campaign_recipients``: queued with its message, or
  skipped with the reason), when it was decided.

The contact is read through merges: asking for a merged contact answers for its survivor, and the threads
and ledgers of every contact merged into it are included (items from those say ``via_merged_contact``).

Paging: items are ordered by (time, kind, id) — ascending by default, ``order=desc`` for a CRM sidebar's
newest-first — and the cursor is that triple of the page's last item, so pages join exactly: nothing lost,
nothing repeated, even when items share a timestamp. Each source is read with its own query, "after the
cursor, in order, LIMIT page + 1", once per thread (or per contact, for the ledgers) through a LATERAL join
that walks an index in order (messages_by_thread, thread_events_by_thread, thread_notes_by_thread,
survey_responses_by_thread_time, consent_events_by_contact_time, campaign_recipients_by_contact), so a page
reads at most page + 1 rows per source and thread however long the history; the sources are merged here and
only the page's items are decrypted. Statuses have no index by thread in time order: they are found through the
thread's messages (message_events_by_message), which costs in proportion to the contact's messages.
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from gateway import keystore
from gateway.crypto import DecryptionError, field_aad

KINDS = ("message", "status", "note", "thread_event", "consent", "survey_answer", "campaign")
RANK = {k: i for i, k in enumerate(KINDS)}


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Source:
    kind: str
    per: str            # 'thread' or 'contact': what q.id is in the LATERAL join
    columns: str
    tables: str
    where: str
    at: str             # the item's time
    keys: tuple         # the tie-breakers after the time, unique per item within the source


SOURCES = (
    Source("message", "thread",
           "m.id, m.thread_id, m.channel_id, m.contact_id, m.direction, m.kind, m.body_enc, m.content_enc, m.status, "
           "m.error_code, m.error_reason, m.automated, m.content_erased_at",
           "messages m", "m.account_id = %(a)s AND m.thread_id = q.id", "m.occurred_at", ("m.id",)),
    Source("status", "thread",
           "e.id, e.message_id, e.status, e.detail, m.thread_id, m.channel_id, m.contact_id, m.direction",
           "messages m JOIN message_events e ON e.account_id = m.account_id AND e.message_id = m.id",
           "m.account_id = %(a)s AND m.thread_id = q.id", "coalesce(e.occurred_at, e.created_at)", ("e.id",)),
    Source("note", "thread", "n.id, n.thread_id, n.contact_id, n.author, n.actor, n.body_enc",
           "thread_notes n", "n.account_id = %(a)s AND n.thread_id = q.id", "n.created_at", ("n.id",)),
    Source("thread_event", "thread", "v.id, v.thread_id, v.kind, v.actor, v.detail",
           "thread_events v", "v.account_id = %(a)s AND v.thread_id = q.id", "v.created_at", ("v.id",)),
    Source("consent", "contact", "e.id, e.contact_id, e.channel_kind, e.purpose, e.action, e.source, e.recorded_at",
           "consent_events e", "e.account_id = %(a)s AND e.contact_id = q.id", "e.occurred_at", ("e.id",)),
    Source("survey_answer", "thread",
           "r.id, r.thread_id, r.channel_id, r.contact_id, r.request_id, r.kind, r.score, r.comment_enc, r.message_id, "
           "r.commented_at",
           "survey_responses r", "r.account_id = %(a)s AND r.thread_id = q.id", "r.answered_at", ("r.id",)),
    Source("campaign", "contact",
           "r.campaign_id, r.contact_id, c.name, c.purpose, c.channel_id, r.state, r.skip_reason, r.message_id",
           "campaign_recipients r JOIN campaigns c ON c.account_id = r.account_id AND c.id = r.campaign_id",
           "r.account_id = %(a)s AND r.contact_id = q.id AND r.decided_at IS NOT NULL", "r.decided_at",
           ("r.campaign_id", "r.contact_id")),
)


# --- cursors ---------------------------------------------------------------------------------------------

def encode_cursor(position: tuple) -> str:
    at, rank, keys = position
    doc = [at.isoformat(), KINDS[rank], [str(k) for k in keys]]
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple:
    """(time, kind rank, keys) of a cursor this module issued; BadCursor otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        at, kind, keys = json.loads(raw)
        at = datetime.fromisoformat(at)
        rank = RANK[kind]
        keys = tuple(uuid.UUID(k) for k in keys)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise BadCursor("not a timeline cursor") from None
    if at.tzinfo is None or len(keys) != len(SOURCES[rank].keys):
        raise BadCursor("not a timeline cursor")
    return at, rank, keys


# --- reading ---------------------------------------------------------------------------------------------

def _query(src: Source, desc: bool, cursor: tuple | None) -> tuple[str, dict]:
    """One source's statement: per thread (or contact), the rows after the cursor in order, LIMIT n, merged
    and cut to n again."""
    direction = "DESC" if desc else "ASC"
    keys = ", ".join(f"{k} AS k{i}" for i, k in enumerate(src.keys))
    order = ", ".join(f"{e} {direction}" for e in (src.at, *src.keys))
    outer = ", ".join(f"x.{name} {direction}" for name in ("at", *(f"k{i}" for i in range(len(src.keys)))))
    params: dict = {}
    cond = ""
    if cursor is not None:
        at, rank, ckeys = cursor
        mine = RANK[src.kind]
        params["c_at"] = at
        if mine != rank:
            # Another kind at the same instant sorts by kind: included when it comes after the cursor's kind.
            later = mine > rank
            op = (">=" if later else ">") if not desc else ("<" if later else "<=")
            cond = f"AND {src.at} {op} %(c_at)s "
        else:
            names = [f"c_k{i}" for i in range(len(ckeys))]
            params.update(zip(names, ckeys))
            cond = (f"AND ({src.at}, {', '.join(src.keys)}) {'<' if desc else '>'} "
                    f"(%(c_at)s, {', '.join(f'%({n})s' for n in names)}) ")
    inner = (f"SELECT {src.columns}, {src.at} AS at, {keys} FROM {src.tables} WHERE {src.where} {cond}"
             f"ORDER BY {order} LIMIT %(n)s")
    ids = "threads" if src.per == "thread" else "contacts"
    sql = (f"SELECT x.* FROM unnest(%({ids})s::uuid[]) AS q(id) CROSS JOIN LATERAL ({inner}) x "
           f"ORDER BY {outer} LIMIT %(n)s")
    return sql, params


def group(conn, *, account_id, contact_id) -> list[dict] | None:
    """The contact that answers for ``contact_id`` first (itself, or the survivor it is merged into), then the
    contacts merged into that one, each with its data key id; None when it is not in the account."""
    rows = conn.execute(
        "SELECT g.id, g.data_key_id, (g.id = r.id) AS root FROM contacts c "
        "JOIN contacts r ON r.account_id = c.account_id AND r.id = coalesce(c.merged_into, c.id) "
        "JOIN contacts g ON g.account_id = r.account_id AND (g.id = r.id OR g.merged_into = r.id) "
        "WHERE c.account_id = %s AND c.id = %s ORDER BY (g.id = r.id) DESC, g.created_at, g.id",
        (account_id, contact_id)).fetchall()
    return rows or None


def page(conn, *, account_id, contact_id, limit: int = 50, after: str | None = None, desc: bool = False,
         kinds: tuple | None = None) -> dict | None:
    """One page of the contact's timeline: ``{contact_id, data, next}``; None when the contact is not in the
    account. ``after`` is the ``next`` of the previous page (BadCursor when it is not one); ``kinds`` limits
    the page to some kinds of items."""
    cursor = decode_cursor(after) if after else None
    members = group(conn, account_id=account_id, contact_id=contact_id)
    if members is None:
        return None
    root = members[0]["id"]
    contact_ids = [m["id"] for m in members]
    threads = {t["id"]: t for t in conn.execute(
        "SELECT t.id, t.contact_id, t.channel_id, ch.kind AS channel_kind FROM threads t "
        "JOIN channels ch ON ch.account_id = t.account_id AND ch.id = t.channel_id "
        "WHERE t.account_id = %s AND t.contact_id = ANY(%s)", (account_id, contact_ids)).fetchall()}
    channels = {t["channel_id"]: t["channel_kind"] for t in threads.values()}
    candidates = []
    for src in SOURCES:
        if kinds is not None and src.kind not in kinds:
            continue
        if src.per == "thread" and not threads:
            continue
        sql, params = _query(src, desc, cursor)
        params.update(a=account_id, n=limit + 1, threads=list(threads), contacts=contact_ids)
        rank = RANK[src.kind]
        for row in conn.execute(sql, params).fetchall():
            keys = tuple(row[f"k{i}"] for i in range(len(src.keys)))
            candidates.append(((row["at"], rank, keys), src.kind, row))
    candidates.sort(key=lambda c: c[0], reverse=desc)
    chosen = candidates[:limit]
    more = len(candidates) > limit
    keys = keystore.load_keys(conn, account_id=account_id, key_ids=[m["data_key_id"] for m in members])
    key_of = {m["id"]: keys.get(m["data_key_id"]) for m in members}
    elsewhere = {row["channel_id"] for _, kind, row in chosen if kind == "campaign"} - set(channels)
    if elsewhere:   # a campaign on a channel the contact has no thread on (skipped before any message)
        channels.update({r["id"]: r["kind"] for r in conn.execute(
            "SELECT id, kind FROM channels WHERE account_id = %s AND id = ANY(%s)",
            (account_id, list(elsewhere))).fetchall()})
    data = [_item(account_id, kind, row, root, threads, channels, key_of) for _, kind, row in chosen]
    return {"contact_id": root, "order": "desc" if desc else "asc", "data": data,
            "next": encode_cursor(chosen[-1][0]) if more and chosen else None}


# --- items -----------------------------------------------------------------------------------------------

def _decrypt(key, token, table: str, column: str, account_id, row_id):
    if token is None:
        return None
    if key is None:
        return None   # the data key is gone: the contact is being erased
    try:
        return key.decrypt_text(token, field_aad(table, column, account_id, row_id))
    except DecryptionError:
        return None


def _item(account_id, kind: str, row: dict, root, threads: dict, channels: dict, key_of: dict) -> dict:
    thread = threads.get(row.get("thread_id"))
    contact = row.get("contact_id") or (thread["contact_id"] if thread else None)
    channel_id = row.get("channel_id") or (thread["channel_id"] if thread else None)
    item = {"at": row["at"], "kind": kind, "id": row["campaign_id"] if kind == "campaign" else row["id"],
            "thread_id": row.get("thread_id"), "channel_id": channel_id, "channel_kind": channels.get(channel_id)}
    if contact is not None and contact != root:
        item["via_merged_contact"] = contact
    key = key_of.get(contact)
    if kind == "message":
        content = _decrypt(key, row["content_enc"], "messages", "content", account_id, row["id"])
        item["message"] = {
            "direction": row["direction"], "kind": row["kind"],
            "text": _decrypt(key, row["body_enc"], "messages", "body", account_id, row["id"]),
            "content": json.loads(content) if content else {}, "status": row["status"],
            "automated": row["automated"], "content_erased": row["content_erased_at"] is not None,
            "error": ({"code": row["error_code"], "reason": row["error_reason"]}
                      if row["error_code"] or row["error_reason"] else None)}
    elif kind == "status":
        detail = row["detail"] or {}
        error = {"code": detail.get("error_code"), "reason": detail.get("error_reason")}
        item["status"] = {"message_id": row["message_id"], "status": row["status"], "direction": row["direction"],
                          "error": error if error["code"] or error["reason"] else None}
    elif kind == "note":
        item["note"] = {"author": row["author"], "actor": row["actor"],
                        "body": _decrypt(key, row["body_enc"], "thread_notes", "body", account_id, row["id"])}
    elif kind == "thread_event":
        item["thread_event"] = {"kind": row["kind"], "actor": row["actor"], "detail": row["detail"] or {}}
    elif kind == "consent":
        item["consent"] = {"channel_kind": row["channel_kind"], "purpose": row["purpose"], "action": row["action"],
                           "source": row["source"], "recorded_at": row["recorded_at"]}
    elif kind == "survey_answer":
        item["survey_answer"] = {
            "kind": row["kind"], "score": row["score"], "request_id": row["request_id"],
            "message_id": row["message_id"], "commented_at": row["commented_at"],
            "comment": _decrypt(key, row["comment_enc"], "survey_responses", "comment", account_id, row["id"])}
    elif kind == "campaign":
        item["campaign"] = {"id": row["campaign_id"], "name": row["name"], "purpose": row["purpose"],
                            "state": row["state"], "skip_reason": row["skip_reason"], "message_id": row["message_id"]}
    return item

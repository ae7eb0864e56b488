"""Threads as the read API shows them: newest activity first, with the 24-hour window and the last message."""
from __future__ import annotations

from gateway import messages

_COLUMNS = ("t.id, t.contact_id, t.channel_id, ch.kind AS channel_kind, t.status, t.handler, "
            # The team and the agent as objects (null when none): one primary-key probe each.
            "(SELECT jsonb_build_object('id', tm.id, 'name', tm.name) FROM teams tm "
            "WHERE tm.account_id = t.account_id AND tm.id = t.team_id) AS team, "
            "(SELECT jsonb_build_object('id', ag.id, 'external_id', ag.external_id, 'name', ag.name) FROM agents ag "
            "WHERE ag.account_id = t.account_id AND ag.id = t.assignee_id) AS assignee, t.assigned_at, "
            "t.last_inbound_at, t.last_outbound_at, t.last_activity_at, t.reopened_at, t.created_at")


def assign_team(conn, *, account_id, thread_id, team: str, by: str) -> bool:
    """Route the thread to a team by name (created when nobody made it yet), whose strategy then picks the
    agent (gateway/routing.py); emits thread.assigned. False when it already was there."""
    from gateway import routing
    return routing.assign_team_by_name(conn, account_id=account_id, thread_id=thread_id, name=team,
                                       actor=by)["changed"]


SORTS = ("activity", "waiting")
PREVIEW_CHARS = 160
# The thread's last message in the same statement (one index probe per row of the page), with the key id that
# decrypts it: a page of 50 threads is one round trip, not 51.
_LAST = ("LEFT JOIN LATERAL (SELECT m.id AS lm_id, m.direction AS lm_direction, m.kind AS lm_kind, "
         "m.body_enc AS lm_body_enc, m.status AS lm_status, m.occurred_at AS lm_occurred_at, m.automated AS lm_automated, "
         "c.data_key_id AS lm_key FROM messages m JOIN contacts c ON c.account_id = m.account_id AND c.id = m.contact_id "
         "WHERE m.account_id = t.account_id AND m.thread_id = t.id ORDER BY m.occurred_at DESC, m.id DESC LIMIT 1) lm "
         "ON true")
# Who the thread is with, as an inbox row names them: the contact's name and first phone number, decrypted with
# the contact's key (the identities in one more query for the whole page).
_CONTACT = "JOIN contacts ct ON ct.account_id = t.account_id AND ct.id = t.contact_id"
_CONTACT_COLUMNS = "ct.name_enc AS ct_name_enc, ct.data_key_id AS ct_key"


def _view(conn, account_id, row: dict) -> dict:
    out = dict(row)
    out["window"] = messages.window(row["last_inbound_at"])
    return out


def get_thread(conn, *, account_id, thread_id) -> dict | None:
    """One thread as the inbox shows it, with its whole last message (not a preview) and its message count."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, t.unread_count, {_CONTACT_COLUMNS}, lm.* FROM threads t JOIN channels ch "
        f"ON ch.account_id = t.account_id AND ch.id = t.channel_id {_CONTACT} {_LAST} "
        "WHERE t.account_id = %s AND t.id = %s", (account_id, thread_id)).fetchall()
    if not rows:
        return None
    [out] = _with_last(conn, account_id, rows, preview=None)
    out["message_count"] = conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND thread_id = %s",
                                        (account_id, thread_id)).fetchone()["n"]
    return out


def list_threads(conn, *, account_id, limit: int = 50, before=None, contact_id=None, channel_id=None,
                 status: str | None = None, statuses: list[str] | None = None, team_id=None, assignee=None,
                 tag: str | None = None, unread: bool | None = None, window: str | None = None,
                 sort: str = "activity") -> list[dict]:
    """The inbox: ``sort`` 'activity' (newest activity first; ``before`` is the previous page's last
    (last_activity_at, id)) or 'waiting' (threads whose customer spoke last and awaits an answer, longest
    waiting first; ``before`` is then the previous page's last (last_inbound_at, id)). ``contact_id`` includes
    the threads of contacts merged into it; ``assignee`` is an agent id or 'none'; ``window`` 'open' or
    'closed' (the 24-hour customer-service window)."""
    where, params = ["t.account_id = %s"], [account_id]
    if contact_id is not None:
        where.append("t.contact_id IN (SELECT id FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s))")
        params += [account_id, contact_id, contact_id]
    if channel_id is not None:
        where.append("t.channel_id = %s"), params.append(channel_id)
    wanted = list(statuses or ()) + ([status] if status else [])
    if wanted:
        where.append("t.status = ANY(%s)"), params.append(wanted)
    if team_id is not None:
        where.append("t.team_id = %s"), params.append(team_id)
    if assignee == "none":
        where.append("t.assignee_id IS NULL")
    elif assignee is not None:
        where.append("t.assignee_id = %s"), params.append(assignee)
    if tag is not None:
        where.append("EXISTS (SELECT 1 FROM thread_tags g WHERE g.account_id = t.account_id AND g.thread_id = t.id "
                     "AND g.tag = %s)"), params.append(tag)
    if unread is not None:
        where.append("t.unread_count > 0" if unread else "t.unread_count = 0")
    if window == "open":
        where.append("t.last_inbound_at > now() - interval '24 hours'")
    elif window == "closed":
        where.append("(t.last_inbound_at IS NULL OR t.last_inbound_at <= now() - interval '24 hours')")
    if sort == "waiting":
        where.append("t.status IN ('open', 'pending') AND t.last_inbound_at IS NOT NULL "
                     "AND t.last_inbound_at > coalesce(t.last_outbound_at, '-infinity'::timestamptz)")
        if before is not None:
            where.append("(t.last_inbound_at, t.id) > (%s, %s)"), params.extend(before)
        order = "t.last_inbound_at, t.id"
    else:
        if before is not None:
            where.append("(t.last_activity_at, t.id) < (%s, %s)"), params.extend(before)
        order = "t.last_activity_at DESC, t.id DESC"
    rows = conn.execute(
        f"SELECT {_COLUMNS}, t.unread_count, {_CONTACT_COLUMNS}, lm.* FROM threads t JOIN channels ch "
        f"ON ch.account_id = t.account_id AND ch.id = t.channel_id {_CONTACT} {_LAST} "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %s",
        (*params, limit)).fetchall()
    return _with_last(conn, account_id, rows)


def _with_last(conn, account_id, rows: list[dict], preview: int | None = PREVIEW_CHARS) -> list[dict]:
    from gateway import keystore
    from gateway.crypto import field_aad
    from gateway import contact_tags
    from gateway import contacts
    keys = keystore.load_keys(conn, account_id=account_id, key_ids=[
        *(r["lm_key"] for r in rows if r["lm_key"]), *(r["ct_key"] for r in rows)])
    tags = contact_tags.thread_tags_of_many(conn, account_id=account_id, thread_ids=[r["id"] for r in rows])
    phones = contacts.addresses_of(conn, account_id=account_id, contact_ids=list({r["contact_id"] for r in rows}),
                                   kind="phone") if rows else {}
    out = []
    for r in rows:
        base = {k: v for k, v in r.items() if not k.startswith(("lm_", "ct_"))}
        view = _view(conn, account_id, base)
        view["unread_count"] = r["unread_count"]
        view["tags"] = tags.get(r["id"], [])
        contact_key = keys.get(r["ct_key"]) or keystore.load_key(conn, account_id=account_id, key_id=r["ct_key"])
        view["contact"] = {"id": r["contact_id"], "phone": phones.get(r["contact_id"]),
                           "name": contact_key.decrypt_text(r["ct_name_enc"], field_aad(
                               "contacts", "name", account_id, r["contact_id"]))}
        if r["lm_id"] is None:
            view["last_message"] = None
        else:
            key = keys.get(r["lm_key"]) or keystore.load_key(conn, account_id=account_id, key_id=r["lm_key"])
            text = key.decrypt_text(r["lm_body_enc"], field_aad("messages", "body", account_id, r["lm_id"])) \
                if r["lm_body_enc"] is not None else None
            view["last_message"] = {"id": r["lm_id"], "direction": r["lm_direction"], "kind": r["lm_kind"],
                                    "text": text[:preview] if text and preview else text, "status": r["lm_status"],
                                    "automated": r["lm_automated"], "occurred_at": r["lm_occurred_at"]}
        out.append(view)
    return out

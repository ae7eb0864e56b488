"""Threads as the read API shows them: newest activity first, with the 24-hour window and the last message."""
from __future__ import annotations

from gateway import events, messages

_COLUMNS = ("t.id, t.contact_id, t.channel_id, ch.kind AS channel_kind, t.status, t.handler, t.team, "
            "t.last_inbound_at, t.last_outbound_at, t.last_activity_at, t.reopened_at, t.created_at")


def assign_team(conn, *, account_id, thread_id, team: str, by: str) -> bool:
    """Route the thread to a team (by name); emits thread.assigned. False when it already was there."""
    row = conn.execute("UPDATE threads SET team = %s WHERE account_id = %s AND id = %s "
                       "AND team IS DISTINCT FROM %s RETURNING channel_id",
                       (team, account_id, thread_id, team)).fetchone()
    if row is None:
        return False
    events.emit(conn, account_id, "thread.assigned", {"thread_id": str(thread_id), "channel_id": str(row["channel_id"]),
                                                      "team": team, "by": by}, subject_id=thread_id)
    return True


def _view(conn, account_id, row: dict, with_last: bool = True) -> dict:
    out = dict(row)
    out["window"] = messages.window(row["last_inbound_at"])
    if with_last:
        last = conn.execute(
            f"SELECT {messages.MESSAGE_COLUMNS} FROM messages m JOIN contacts c ON c.account_id = m.account_id "
            "AND c.id = m.contact_id WHERE m.account_id = %s AND m.thread_id = %s "
            "ORDER BY m.occurred_at DESC, m.id DESC LIMIT 1", (account_id, row["id"])).fetchone()
        if last is not None:
            m = messages.decrypt_message(conn, account_id, last)
            out["last_message"] = {k: m[k] for k in ("id", "direction", "kind", "text", "status", "occurred_at")}
        else:
            out["last_message"] = None
    return out


def get_thread(conn, *, account_id, thread_id) -> dict | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM threads t JOIN channels ch ON ch.account_id = t.account_id AND ch.id = t.channel_id "
        "WHERE t.account_id = %s AND t.id = %s", (account_id, thread_id)).fetchone()
    if row is None:
        return None
    out = _view(conn, account_id, row)
    out["message_count"] = conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND thread_id = %s",
                                        (account_id, thread_id)).fetchone()["n"]
    return out


def list_threads(conn, *, account_id, limit: int = 50, before=None, contact_id=None, channel_id=None,
                 status: str | None = None) -> list[dict]:
    """Newest activity first; ``before`` is the (last_activity_at, id) of the previous page's last thread.
    ``contact_id`` includes the threads of contacts merged into it."""
    where, params = ["t.account_id = %s"], [account_id]
    if contact_id is not None:
        where.append("t.contact_id IN (SELECT id FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s))")
        params += [account_id, contact_id, contact_id]
    if channel_id is not None:
        where.append("t.channel_id = %s"), params.append(channel_id)
    if status is not None:
        where.append("t.status = %s"), params.append(status)
    if before is not None:
        where.append("(t.last_activity_at, t.id) < (%s, %s)"), params.extend(before)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM threads t JOIN channels ch ON ch.account_id = t.account_id AND ch.id = t.channel_id "
        f"WHERE {' AND '.join(where)} ORDER BY t.last_activity_at DESC, t.id DESC LIMIT %s",
        (*params, limit)).fetchall()
    return [_view(conn, account_id, r) for r in rows]

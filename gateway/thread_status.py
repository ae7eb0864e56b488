"""Changing a thread's status over the API (open / pending / snoozed / resolved).

Only the transition itself lives here; a later issue builds the full lifecycle (assignment, snooze wake-up).
Resolving starts a survey (gateway/surveys.py) in the same transaction, so the status change, its audit row
and the survey request commit together; it also gives the thread back to the bot (a person's hand-off lasts
until the conversation is resolved) and forgets any menu the customer was in.
"""
from __future__ import annotations

from datetime import datetime

from gateway import thread_events
from gateway.accounts import audit

STATUSES = ("open", "pending", "snoozed", "resolved")
# Where a thread may go from each status. A resolved conversation is only ever reopened (an agent's
# follow-up, or the customer's next message); the rest move freely between working states.
ALLOWED = {
    "open": ("pending", "snoozed", "resolved"),
    "pending": ("open", "snoozed", "resolved"),
    "snoozed": ("open", "pending", "resolved"),
    "resolved": ("open",),
}


class TransitionRefused(Exception):
    def __init__(self, current: str):
        super().__init__(f"a {current} thread can go to {' or '.join(ALLOWED[current])}")
        self.current, self.allowed = current, ALLOWED[current]


def set_status(conn, *, account_id, thread_id, status: str, snooze_until: datetime | None, actor: str,
               agent: str | None = None) -> dict | None:
    """Move the thread; returns {thread, previous, changed, resolution_seq, survey} or None for an unknown thread.
    Raises TransitionRefused for a move ALLOWED does not list (the same status again is no move: kept).
    ``agent``: the CRM's id of the person who did it, beside the API key that carried it.

    The row lock taken by the UPDATE makes a repeated or concurrent 'resolved' count as one resolution:
    only a transition from another status increments ``resolution_seq``."""
    before = conn.execute("SELECT status FROM threads WHERE account_id = %s AND id = %s FOR UPDATE",
                          (account_id, thread_id)).fetchone()
    if before is None:
        return None
    previous = before["status"]
    changed = previous != status
    if changed and status not in ALLOWED[previous]:
        raise TransitionRefused(previous)
    row = conn.execute(
        "UPDATE threads SET status = %(s)s::text, "
        "resolution_seq = resolution_seq + CASE WHEN %(s)s = 'resolved' AND status <> 'resolved' THEN 1 ELSE 0 END, "
        "resolved_at = CASE WHEN %(s)s = 'resolved' AND status <> 'resolved' THEN now() "
        "WHEN %(s)s = 'resolved' THEN resolved_at ELSE NULL END, "
        "snoozed_until = CASE WHEN %(s)s = 'snoozed' THEN %(u)s::timestamptz ELSE NULL END, "
        "reopened_at = CASE WHEN %(s)s = 'open' AND status IN ('resolved', 'snoozed') THEN now() ELSE reopened_at END "
        "WHERE account_id = %(a)s AND id = %(t)s "
        "RETURNING id, contact_id, channel_id, status, resolution_seq, resolved_at, snoozed_until, reopened_at",
        {"s": status, "u": snooze_until, "a": account_id, "t": thread_id}).fetchone()
    survey = None
    if changed and status == "resolved":
        from gateway import routing, surveys
        from gateway.automation import engine, flow_runner
        # A resolved conversation starts afresh: the bot answers the next one, outside any old menu.
        engine.hand_back(conn, account_id=account_id, thread_id=thread_id)
        flow_runner.clear(conn, account_id=account_id, thread_id=thread_id)
        survey = surveys.on_resolved(conn, account_id=account_id, thread=row)
        routing.on_thread_closed(conn, account_id=account_id, thread_id=thread_id)   # its agent takes the next queued
    detail = {"from": previous, "to": status}
    if survey is not None:
        detail["survey_request_id"] = str(survey["id"])
        detail["survey_state"] = survey["state"]
        if survey.get("skip_reason"):
            detail["survey_skip_reason"] = survey["skip_reason"]
    audit(conn, account_id=account_id, actor=actor, action="thread.status_changed" if changed else "thread.status_kept",
          target_type="thread", target_id=thread_id, detail=detail)
    if changed:
        thread_events.record(conn, account_id=account_id, thread_id=thread_id, kind="status",
                             actor=f"agent:{agent}" if agent else actor,
                             detail={"from": previous, "to": status, "by_key": actor if agent else None,
                                     "snoozed_until": snooze_until.isoformat() if snooze_until else None})
    return {"thread": row, "previous": previous, "changed": changed, "survey": survey}


def wake_snoozed(conn, *, limit: int = 500) -> int:
    """Snoozed threads whose time came are open again (the sweeper calls this each pass)."""
    rows = conn.execute(
        "UPDATE threads SET status = 'open', snoozed_until = NULL, reopened_at = now() WHERE (account_id, id) IN "
        "(SELECT account_id, id FROM threads WHERE status = 'snoozed' AND snoozed_until <= now() "
        "ORDER BY snoozed_until LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING account_id, id", (limit,)).fetchall()
    for r in rows:
        thread_events.record(conn, account_id=r["account_id"], thread_id=r["id"], kind="status", actor="gateway",
                             detail={"from": "snoozed", "to": "open", "reason": "snooze ended"})
    return len(rows)


def mark_read(conn, *, account_id, thread_id) -> dict | None:
    """An agent read the thread: nothing unread any more."""
    return conn.execute("UPDATE threads SET unread_count = 0, agent_read_at = now() WHERE account_id = %s AND id = %s "
                        "RETURNING id, unread_count, agent_read_at", (account_id, thread_id)).fetchone()

"""Campaign rows: creation, the state machine, progress counts and per-recipient results (SQL lives here)."""
from __future__ import annotations

from datetime import datetime, timezone

from psycopg.types.json import Jsonb

from gateway import events
from gateway.db import uuid7

COLUMNS = ("id, name, purpose, channel_id, spec, state, state_reason, waiting, start_at, audience_ready, duplicates, "
           "canary_done, created_at, updated_at, started_at, finished_at")
ACTIVE = ("scheduled", "running")
FINAL = ("completed", "cancelled")
# Which states each action leaves from, and where it goes (start: scheduled, or running when due).
TRANSITIONS = {
    "start": ("draft",),
    "pause": ("scheduled", "running"),
    "resume": ("paused",),
    "cancel": ("draft", "scheduled", "running", "paused"),
}
STATUS_CHANGED = "campaign.status_changed"


class NameTaken(Exception):
    pass


def create(conn, *, account_id, doc: dict) -> dict:
    spec = {k: v for k, v in doc.items() if k not in ("name", "purpose", "channel_id", "start_at")}
    row = conn.execute(
        f"INSERT INTO campaigns (account_id, id, name, purpose, channel_id, spec, start_at) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, name) DO NOTHING RETURNING {COLUMNS}",
        (account_id, uuid7(), doc["name"].strip(), doc["purpose"], doc["channel_id"], Jsonb(spec),
         doc.get("start_at"))).fetchone()
    if row is None:
        raise NameTaken(doc["name"])
    return row


def get(conn, *, account_id, campaign_id, lock: bool = False) -> dict | None:
    return conn.execute(f"SELECT {COLUMNS} FROM campaigns WHERE account_id = %s AND id = %s"
                        + (" FOR UPDATE" if lock else ""), (account_id, campaign_id)).fetchone()


def list_campaigns(conn, *, account_id, state: str | None = None, limit: int = 50, before=None) -> list[dict]:
    return conn.execute(
        f"SELECT {COLUMNS} FROM campaigns WHERE account_id = %s AND (%s::text IS NULL OR state = %s) "
        "AND (%s::uuid IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
        (account_id, state, state, before, before, limit)).fetchall()


def set_state(conn, *, account_id, campaign_id, state: str, reason: str | None, by: str,
              extra_sql: str = "") -> dict:
    row = conn.execute(
        f"UPDATE campaigns SET state = %s, state_reason = %s, waiting = NULL, updated_at = now() {extra_sql} "
        f"WHERE account_id = %s AND id = %s RETURNING {COLUMNS}",
        (state, reason, account_id, campaign_id)).fetchone()
    events.emit(conn, account_id, STATUS_CHANGED, {"campaign_id": str(campaign_id), "state": state,
                                                   "reason": reason, "by": by}, subject_id=campaign_id)
    return row


def transition(conn, *, account_id, campaign_id, action: str, by: str, now: datetime | None = None,
               reason: str | None = None) -> tuple[dict | None, bool]:
    """Apply an API action. (row, changed); row None for an unknown campaign. Raises ValueError naming the
    states the action needs. Repeating an action that already took effect changes nothing."""
    now = now or datetime.now(timezone.utc)
    row = get(conn, account_id=account_id, campaign_id=campaign_id, lock=True)
    if row is None:
        return None, False
    done_already = {"start": ("scheduled", "running", "paused", "completed"), "pause": ("paused",),
                    "resume": ("running",), "cancel": ("cancelled",)}[action]
    if row["state"] in done_already:
        return row, False
    if row["state"] not in TRANSITIONS[action]:
        raise ValueError(f"a {row['state']} campaign cannot be {action_word(action)}; it can be from "
                         f"{' or '.join(TRANSITIONS[action])}")
    if action == "start":
        due = row["start_at"] is None or row["start_at"] <= now
        return set_state(conn, account_id=account_id, campaign_id=campaign_id,
                         state="running" if due else "scheduled", reason=None, by=by,
                         extra_sql=", start_at = coalesce(start_at, now())"
                                   + (", started_at = now(), pace_from = now(), pace_fed = 0" if due else "")), True
    if action == "pause":
        return set_state(conn, account_id=account_id, campaign_id=campaign_id, state="paused",
                         reason=reason or "paused over the API", by=by), True
    if action == "resume":
        # A fresh pacing epoch: the paused time is not a credit to burst with.
        return set_state(conn, account_id=account_id, campaign_id=campaign_id, state="running", reason=None, by=by,
                         extra_sql=", started_at = coalesce(started_at, now()), pace_from = now(), pace_fed = 0"), True
    return set_state(conn, account_id=account_id, campaign_id=campaign_id, state="cancelled",
                     reason=reason or "cancelled over the API", by=by, extra_sql=", finished_at = now()"), True


def action_word(action: str) -> str:
    return {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]


def auto_pause(conn, *, account_id, campaign_id, reason: str) -> None:
    set_state(conn, account_id=account_id, campaign_id=campaign_id, state="paused", reason=reason, by="gateway")


def pause_using_template(conn, *, account_id, waba_id: str | None, name: str, status: str) -> int:
    """Meta paused or disabled a template: every active campaign sending it pauses and says why."""
    rows = conn.execute(
        "SELECT c.id FROM campaigns c JOIN channels ch ON ch.account_id = c.account_id AND ch.id = c.channel_id "
        "WHERE c.account_id = %s AND c.state IN ('scheduled', 'running') "
        "AND c.spec -> 'message' -> 'template' ->> 'name' = %s AND (%s::text IS NULL OR ch.group_id = %s "
        "OR ch.kind <> 'whatsapp') FOR UPDATE OF c", (account_id, name, waba_id, waba_id)).fetchall()
    for r in rows:
        auto_pause(conn, account_id=account_id, campaign_id=r["id"],
                   reason=f"template {name!r} is {status} at Meta: sends would fail (132015/132016); resume once "
                          "Meta approves it again, or cancel")
    return len(rows)


# --- progress ----------------------------------------------------------------------------------------

_COUNTS = (
    "SELECT r.state, r.skip_reason, m.status, m.error_code, (r.replied_at IS NOT NULL) AS replied, count(*) AS n "
    "FROM campaign_recipients r LEFT JOIN messages m ON m.account_id = r.account_id AND m.id = r.message_id "
    "WHERE r.account_id = %s AND r.campaign_id = %s GROUP BY 1, 2, 3, 4, 5")
# Opted out after the campaign reached them: a withdrawal of marketing (or of everything) recorded since.
_OPTED_OUT_AFTER = (
    "SELECT count(*) AS n FROM campaign_recipients r WHERE r.account_id = %s AND r.campaign_id = %s "
    "AND r.state = 'queued' AND EXISTS (SELECT 1 FROM consent_events e WHERE e.account_id = r.account_id "
    "AND e.contact_id = r.contact_id AND e.action = 'withdrawn' AND e.purpose IN ('marketing', 'all') "
    "AND e.recorded_at >= r.queued_at)")
# What a message's status says for a campaign's progress.
_SENDING = ("queued", "retry_scheduled", "sending", "unknown")


def counts(conn, *, account_id, campaign_id) -> dict:
    out = {"recipients": 0, "pending": 0, "skipped": {}, "queued": 0, "sent": 0, "delivered": 0, "read": 0,
           "replied": 0, "failed": {}, "opted_out_after": 0}
    for r in conn.execute(_COUNTS, (account_id, campaign_id)).fetchall():
        n = r["n"]
        out["recipients"] += n
        if r["state"] == "pending":
            out["pending"] += n
        elif r["state"] == "skipped":
            out["skipped"][r["skip_reason"] or "unknown"] = out["skipped"].get(r["skip_reason"] or "unknown", 0) + n
        else:
            status = r["status"]
            if status == "failed":
                code = r["error_code"] or "unknown"
                out["failed"][code] = out["failed"].get(code, 0) + n
            elif status in ("sent", "delivered", "read"):
                # Counted cumulatively: a read message was also sent and delivered.
                out["sent"] += n
                out["delivered"] += n if status in ("delivered", "read") else 0
                out["read"] += n if status == "read" else 0
            else:
                out["queued"] += n
            out["replied"] += n if r["replied"] else 0
    out["opted_out_after"] = conn.execute(_OPTED_OUT_AFTER, (account_id, campaign_id)).fetchone()["n"]
    out["skipped_total"] = sum(out["skipped"].values())
    out["failed_total"] = sum(out["failed"].values())
    return out


def results(conn, *, account_id, campaign_id, after_seq: int = 0, limit: int = 1000) -> list[dict]:
    """Per recipient, in feed order: what happened (contact ids and facts; addresses added by the caller)."""
    return conn.execute(
        "SELECT r.seq, r.contact_id, r.state, r.skip_reason, r.defer_until, r.message_id, r.queued_at, r.replied_at, "
        "m.status, m.error_code, m.error_reason, m.sent_at FROM campaign_recipients r LEFT JOIN messages m "
        "ON m.account_id = r.account_id AND m.id = r.message_id WHERE r.account_id = %s AND r.campaign_id = %s "
        "AND r.seq > %s ORDER BY r.seq LIMIT %s", (account_id, campaign_id, after_seq, limit)).fetchall()


# --- replies -------------------------------------------------------------------------------------------

def note_replies(conn, *, account_id, replies: list[tuple]) -> int:
    """Credit customers' messages ((contact id, when) pairs) to the campaign messages each got in the week
    before (one statement)."""
    return conn.execute(
        "UPDATE campaign_recipients r SET replied_at = q.at FROM unnest(%s::uuid[], %s::timestamptz[]) AS q(c, at) "
        "WHERE r.account_id = %s AND r.contact_id = q.c AND r.state = 'queued' AND r.replied_at IS NULL "
        # Providers stamp messages to the second, and clocks differ: a minute's slack either way.
        "AND r.queued_at <= q.at + interval '1 minute' AND r.queued_at > q.at - interval '7 days'",
        ([c for c, _ in replies], [at for _, at in replies], account_id)).rowcount


_awaiting: dict = {}
AWAITING_TTL_S = 10.0


def awaiting_replies(conn, account_id) -> bool:
    """Whether any campaign message of the account still waits for a reply (cached briefly per process: the
    inbound worker asks for every batch, and most accounts most of the time have none)."""
    import time
    hit = _awaiting.get(account_id)
    if hit is not None and time.monotonic() - hit[1] < AWAITING_TTL_S:
        return hit[0]
    value = conn.execute("SELECT EXISTS (SELECT 1 FROM campaign_recipients WHERE account_id = %s AND state = 'queued' "
                         "AND replied_at IS NULL) AS x", (account_id,)).fetchone()["x"]
    _awaiting[account_id] = (value, time.monotonic())
    return value

"""Retention (GDPR Art. 5(1)(e)): personal data is kept no longer than each account says.

Per account (``accounts.retention_*_days``, NULL keeps forever):

- **Message content** older than ``retention_message_days`` (by the message's own time, ``occurred_at``) is
  wiped, not deleted: the text (``body_enc``), structured content (``content_enc``) and attachments (rows
  and bytes) go; the message stays with its direction, kind, channel, status history and times, so
  reports, billing counts and thread structure still add up. ``content_erased_at`` says when it went.
  Messages still owed a send (queued, sending, retry_scheduled) are left to the send worker.
- **Raw inbound events** older than ``retention_raw_event_days`` are deleted, but only once processed:
  an unprocessed one is work a worker still owes.
- **Pending statuses** (a status whose message never appeared) go after ``PENDING_STATUS_DAYS`` in every
  account: a message arrives within seconds of its statuses, so older ones wait for nothing.

Work goes in batches of ``BATCH`` rows picked by primary key, each batch its own short transaction with
row locks only (``FOR UPDATE SKIP LOCKED``), so traffic never waits on retention and two runs at once
share the work instead of colliding. The sweeper runs a short slice of it on each pass while anything is
due, then checks again every ``GATEWAY_RETENTION_INTERVAL_S``; ``gateway retention run`` does it by hand.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway import db, media

log = logging.getLogger("gateway.retention")
BATCH = 1000
PENDING_STATUS_DAYS = 7
TABLES = ("messages", "inbound_events", "pending_statuses")


@dataclass
class Policy:
    account_id: object
    name: str
    message_days: int | None
    raw_event_days: int | None
    now: datetime

    def cutoff(self, table: str) -> datetime | None:
        days = {"messages": self.message_days, "inbound_events": self.raw_event_days,
                "pending_statuses": PENDING_STATUS_DAYS}[table]
        return None if days is None else self.now - timedelta(days=days)


@dataclass
class Report:
    """Per (account id, table): how many rows were due and how many went (or would go, in a dry run)."""
    due: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    complete: bool = True     # False when a time budget ran out with rows still due

    def rows(self) -> list[dict]:
        return [{"account_id": str(a), "table": t, "due": n, "done": self.done.get((a, t), 0)}
                for (a, t), n in self.due.items()]


# The due rows of each table, oldest first, locked for this batch only. %(a)s account, %(cut)s cutoff.
_DUE = {
    "messages": "SELECT id FROM messages WHERE account_id = %(a)s AND content_erased_at IS NULL "
                "AND occurred_at < %(cut)s AND status NOT IN ('queued', 'sending', 'retry_scheduled')",
    "inbound_events": "SELECT id FROM inbound_events WHERE account_id = %(a)s AND processed_at IS NOT NULL "
                      "AND received_at < %(cut)s",
    "pending_statuses": "SELECT id FROM pending_statuses WHERE account_id = %(a)s AND created_at < %(cut)s",
}
_ORDER = {"messages": "occurred_at, id", "inbound_events": "received_at, id", "pending_statuses": "created_at, id"}


def policies(conn, account_id=None) -> list[Policy]:
    rows = conn.execute(
        "SELECT id, name, retention_message_days, retention_raw_event_days, now() AS now FROM accounts "
        "WHERE (%(a)s::uuid IS NULL OR id = %(a)s) ORDER BY created_at, id", {"a": account_id}).fetchall()
    return [Policy(r["id"], r["name"], r["retention_message_days"], r["retention_raw_event_days"], r["now"])
            for r in rows]


def count_due(conn, policy: Policy, table: str) -> int:
    cut = policy.cutoff(table)
    if cut is None:
        return 0
    return conn.execute(f"SELECT count(*) AS n FROM ({_DUE[table]}) d",
                        {"a": policy.account_id, "cut": cut}).fetchone()["n"]


def _batch(conn, policy: Policy, table: str, size: int) -> int:
    """One batch in the caller's transaction; returns how many rows it handled."""
    params = {"a": policy.account_id, "cut": policy.cutoff(table), "n": size}
    due = f"{_DUE[table]} ORDER BY {_ORDER[table]} LIMIT %(n)s FOR UPDATE SKIP LOCKED"
    if table == "messages":
        ids = [r["id"] for r in conn.execute(
            f"UPDATE messages m SET body_enc = NULL, content_enc = NULL, content_erased_at = now() "
            f"WHERE m.account_id = %(a)s AND m.id IN ({due}) RETURNING m.id", params).fetchall()]
        media.delete_for_messages(conn, account_id=policy.account_id, message_ids=ids)
        return len(ids)
    return conn.execute(f"DELETE FROM {table} WHERE account_id = %(a)s AND id IN ({due})", params).rowcount


def run(account_id=None, *, dry_run: bool = False, batch: int = BATCH, budget_s: float | None = None,
        count: bool = True, progress=None) -> Report:
    """Apply every account's retention (or one account's). ``progress(policy, table, done, due)`` is called
    after each batch. ``budget_s`` stops between batches once spent (``Report.complete`` is then False);
    ``count=False`` skips counting what is due first (the sweeper's slices: a count over a large backlog
    costs more than the slice)."""
    report = Report()
    deadline = None if budget_s is None else time.monotonic() + budget_s
    with db.connection() as conn:
        found = policies(conn, account_id)
    for policy in found:
        for table in TABLES:
            if policy.cutoff(table) is None:
                continue
            key = (policy.account_id, table)
            due = None
            if count or dry_run:
                with db.connection() as conn:
                    due = count_due(conn, policy, table)
                report.due[key] = due
            if dry_run or due == 0:
                report.done[key] = 0
                continue
            done = 0
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    report.complete = False
                    break
                with db.connection() as conn:   # each batch commits on its own: short locks, bounded WAL
                    n = _batch(conn, policy, table, batch)
                done += n
                if progress is not None:
                    progress(policy, table, done, due)
                if n < batch:
                    break
            report.done[key] = done
            report.due.setdefault(key, done)
            if done:
                log.info("retention applied", extra={"account_id": str(policy.account_id), "table": table,
                                                     "rows": done})
            if not report.complete:
                return report
    return report


def sweep_slice(budget_s: float = 2.0) -> bool:
    """The sweeper's share: up to ``budget_s`` of retention work; True when nothing due is left."""
    return run(budget_s=budget_s, count=False).complete

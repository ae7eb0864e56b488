"""The campaign feeder: turns pending recipients into queued messages as the pace, the messaging limit, the
canary and quiet hours allow, and pauses a campaign whose sends go wrong.

It runs as a thread of the sweeper process (one per deployment is enough; two are safe: each campaign is
fed under its row lock, taken with SKIP LOCKED). Each tick, per active campaign, in one transaction:

1. a scheduled campaign whose start time came becomes running; its audience is resolved once into
   ``campaign_recipients`` (all or nothing);
2. a template Meta no longer approves pauses it (Meta's webhook usually got there first);
3. health: over the canary, then over the latest ``window`` sends, the share of failures, of 131049/131048
   (Meta declining to deliver) and of opt-outs since; over a threshold the campaign pauses itself and says why;
4. how many may go now: the pace (``pace_per_s``, at most 90 % of the channel's rate so replies to customers
   keep room, counted from the pacing epoch), the room in a small backlog (about two seconds of sends not
   yet handed to the provider, so a campaign never queues thousands of messages ahead of a reply), the
   canary (its first sends go alone, then wait for their outcome), and the channel's messaging limit
   (unique customers reached with templates in a rolling 24 h, ``settings.messaging_limit``);
5. that many pending recipients, in feed order, through the one send gate (``outbound.accept_many``): a
   refusal is recorded as a skip with the gate's rule; an accepted message is queued and enqueued after
   commit. The idempotency key ``campaign:{id}:{contact}`` and the recipient's row make a second feed of the
   same recipient (a crash between commit and bookkeeping, two feeders) the same message: sent at most once.

Nothing here lives in Redis: a flush, a restart or a killed process resumes from these rows.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

from gateway import db, events, metrics, outbound, send_gate
from gateway.campaigns import audience, prepare, store
from gateway.campaigns import spec as campaign_spec

log = logging.getLogger("gateway.campaigns")

TICK_S = 0.1
MAX_BATCH = 500
BACKLOG_S = 0.5               # at most this much of the pace handed over but not yet sent
MIN_BACKLOG = 5
CREDIT_S = 0.2                # time the feeder could not use (waits, stalls) is not a credit to burst with
CHANNEL_SHARE = 0.9            # of the channel's rate a campaign may use at most
DEFAULT_SHARE = 0.8            # without a pace_per_s
CANARY_WAIT = timedelta(seconds=60)   # the longest the canary waits for its outcomes once all went out
HEALTH_EVERY_S = 1.0
MIN_OUTCOMES = 20              # fewer settled sends than this say nothing yet (outside the canary)
BLOCKED_CODES = ("131049", "131048")
_SETTLED = ("delivered", "read", "failed")
_last_health: dict = {}


def effective_pace(campaign: dict, channel: dict) -> float:
    caps = send_gate.capabilities(channel["kind"])
    rate = float((channel["settings"] or {}).get("rate_per_s") or caps.get("rate_per_s") or 80)
    wanted = campaign["spec"].get("pace_per_s")
    return min(float(wanted), rate * CHANNEL_SHARE) if wanted else rate * DEFAULT_SHARE


def messaging_limit(channel: dict) -> int | None:
    value = (channel["settings"] or {}).get("messaging_limit")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# --- one tick --------------------------------------------------------------------------------------------

def tick_once(now: datetime | None = None) -> int:
    """Feed every active campaign once; returns how many recipients were handled (queued or skipped)."""
    with db.connection() as conn:
        due = conn.execute("SELECT account_id, id FROM campaigns WHERE state = 'running' "
                           "OR (state = 'scheduled' AND start_at <= now()) ORDER BY start_at").fetchall()
    handled = 0
    for row in due:
        try:
            handled += feed(row["account_id"], row["id"], now=now)
        except Exception as exc:   # one campaign's trouble must not stop the others
            log.warning("campaign feed failed", extra={"campaign_id": str(row["id"]), "error": type(exc).__name__},
                        exc_info=True)
    return handled


def feed(account_id, campaign_id, *, now: datetime | None = None) -> int:
    enqueue: list = []
    with db.connection() as conn:
        c = conn.execute(
            f"SELECT {store.COLUMNS}, pace_from, pace_fed FROM campaigns WHERE account_id = %s AND id = %s "
            "FOR UPDATE SKIP LOCKED", (account_id, campaign_id)).fetchone()
        if c is None or c["state"] not in store.ACTIVE:
            return 0
        now = now or conn.execute("SELECT now() AS t").fetchone()["t"]
        handled = _feed(conn, account_id, c, now, enqueue)
    for message_id in enqueue:
        outbound.enqueue(account_id, message_id)
    return handled


def _feed(conn, account_id, c: dict, now: datetime, enqueue: list) -> int:
    cid = c["id"]
    if c["state"] == "scheduled":
        if c["start_at"] > now:
            return 0
        c = dict(c, **conn.execute(
            "UPDATE campaigns SET state = 'running', started_at = now(), pace_from = now(), pace_fed = 0, "
            "updated_at = now() WHERE account_id = %s AND id = %s RETURNING state, pace_from, pace_fed",
            (account_id, cid)).fetchone())
        events.emit(conn, account_id, store.STATUS_CHANGED, {"campaign_id": str(cid), "state": "running",
                                                                   "reason": "start time reached", "by": "gateway"},
                          subject_id=cid)
    channel = conn.execute("SELECT id, kind, group_id, settings, status FROM channels WHERE account_id = %s AND id = %s",
                           (account_id, c["channel_id"])).fetchone()
    if not c["audience_ready"]:
        added, dupes = audience.materialise(conn, account_id=account_id, campaign_id=cid, audience=c["spec"]["audience"],
                                            channel_kind=channel["kind"])
        # The pace counts from here: resolving a large audience takes a while, and is no credit to burst with.
        conn.execute("UPDATE campaigns SET audience_ready = true, duplicates = %s, pace_from = clock_timestamp(), "
                     "pace_fed = 0, updated_at = now() WHERE account_id = %s AND id = %s", (dupes, account_id, cid))
        return 0
    reason = _template_problem(conn, account_id, c, channel) or _health_problem(conn, account_id, c)
    if reason:
        store.auto_pause(conn, account_id=account_id, campaign_id=cid, reason=reason)
        return 0
    room, waiting, dropped = _room(conn, account_id, c, channel, now)
    if dropped:
        conn.execute("UPDATE campaigns SET pace_fed = pace_fed + %s WHERE account_id = %s AND id = %s",
                     (dropped, account_id, cid))
    if room <= 0:
        _wait(conn, account_id, c, waiting)
        return 0
    rows = conn.execute(
        "SELECT contact_id FROM campaign_recipients WHERE account_id = %s AND campaign_id = %s AND state = 'pending' "
        "AND (defer_until IS NULL OR defer_until <= %s) ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED",
        (account_id, cid, now, room)).fetchall()
    if not rows:
        return _finish_or_wait(conn, account_id, c, now)
    tz = conn.execute("SELECT timezone FROM accounts WHERE id = %s", (account_id,)).fetchone()["timezone"] or "UTC"
    planned = prepare.drafts(conn, c, account_id, [r["contact_id"] for r in rows], now=now, account_tz=tz)
    skips, deferred, drafts = [], [], []
    for contact_id, draft, why in planned:
        if draft is not None:
            drafts.append((contact_id, draft))
        elif isinstance(why, tuple):
            deferred.append((contact_id, why[1]))
        else:
            skips.append((contact_id, why))
    queued = []
    for (contact_id, _), outcome in zip(drafts, outbound.accept_many(conn, account_id, [d for _, d in drafts])):
        if isinstance(outcome, Exception):
            skips.append((contact_id, prepare.skip_reason(outcome)))
        else:
            queued.append((contact_id, outcome.message["id"]))
            if outcome.created:
                enqueue.append(outcome.message["id"])
    _record(conn, account_id, cid, queued, skips, deferred, now)
    conn.execute("UPDATE campaigns SET pace_fed = pace_fed + %s, waiting = %s, updated_at = now() "
                 "WHERE account_id = %s AND id = %s", (len(queued), waiting, account_id, cid))
    return len(queued) + len(skips)


def _record(conn, account_id, cid, queued, skips, deferred, now) -> None:
    if queued:
        conn.execute(
            "UPDATE campaign_recipients r SET state = 'queued', message_id = q.m, queued_at = %s, decided_at = %s, "
            "defer_until = NULL FROM unnest(%s::uuid[], %s::uuid[]) AS q(c, m) WHERE r.account_id = %s "
            "AND r.campaign_id = %s AND r.contact_id = q.c",
            (now, now, [q[0] for q in queued], [q[1] for q in queued], account_id, cid))
    if skips:
        conn.execute(
            "UPDATE campaign_recipients r SET state = 'skipped', skip_reason = q.why, decided_at = %s, "
            "defer_until = NULL FROM unnest(%s::uuid[], %s::text[]) AS q(c, why) WHERE r.account_id = %s "
            "AND r.campaign_id = %s AND r.contact_id = q.c",
            (now, [s[0] for s in skips], [s[1] for s in skips], account_id, cid))
    if deferred:
        conn.execute(
            "UPDATE campaign_recipients r SET defer_until = q.u FROM unnest(%s::uuid[], %s::timestamptz[]) AS q(c, u) "
            "WHERE r.account_id = %s AND r.campaign_id = %s AND r.contact_id = q.c",
            ([d[0] for d in deferred], [d[1] for d in deferred], account_id, cid))
    for result, rows in (("queued", queued), ("skipped", skips), ("deferred", deferred)):
        if rows:
            metrics.CAMPAIGN_FED.labels(result).inc(len(rows))


def _wait(conn, account_id, c, waiting: str | None) -> None:
    if waiting != c["waiting"]:
        conn.execute("UPDATE campaigns SET waiting = %s, updated_at = now() WHERE account_id = %s AND id = %s",
                     (waiting, account_id, c["id"]))


def _finish_or_wait(conn, account_id, c, now) -> int:
    later = conn.execute(
        "SELECT min(defer_until) AS t, count(*) AS n FROM campaign_recipients WHERE account_id = %s "
        "AND campaign_id = %s AND state = 'pending'", (account_id, c["id"])).fetchone()
    if later["n"]:
        _wait(conn, account_id, c, f"quiet hours: {later['n']} recipient(s) wait until "
                                   f"{later['t'].astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC at the earliest")
        return 0
    store.set_state(conn, account_id=account_id, campaign_id=c["id"], state="completed",
                    reason="every recipient was sent to or skipped", by="gateway", extra_sql=", finished_at = now()")
    return 0


# --- how many may go now ---------------------------------------------------------------------------------

def _room(conn, account_id, c: dict, channel: dict, now: datetime) -> tuple[int, str | None, int]:
    """(how many recipients to take now, what the campaign waits for when that is 0, pace credit dropped)."""
    pace = effective_pace(c, channel)
    elapsed = max(0.0, (now - (c["pace_from"] or now)).total_seconds())
    allowance = int(pace * elapsed) - c["pace_fed"]
    cap = max(1, int(pace * CREDIT_S))
    dropped = max(0, allowance - cap)
    allowance -= dropped
    if allowance < 1:
        return 0, None, dropped
    # Everything of the account waiting for a worker (one partial-index count): a reply joins that line too.
    in_flight = conn.execute(
        "SELECT count(*) AS n FROM messages WHERE account_id = %s AND direction = 'outbound' "
        "AND status IN ('queued', 'retry_scheduled')", (account_id,)).fetchone()["n"]
    room = min(allowance, MAX_BATCH, max(MIN_BACKLOG, int(pace * BACKLOG_S)) - in_flight)
    if room <= 0:
        return 0, None, dropped
    canary = _canary(c)
    if canary and not c["canary_done"]:
        state = conn.execute(
            "SELECT count(*) AS n, count(*) FILTER (WHERE m.status IN ('delivered', 'read', 'failed')) AS settled, "
            "max(r.queued_at) AS last FROM campaign_recipients r LEFT JOIN messages m ON m.account_id = r.account_id "
            "AND m.id = r.message_id WHERE r.account_id = %s AND r.campaign_id = %s AND r.state = 'queued'",
            (account_id, c["id"])).fetchone()
        if state["n"] < canary["size"]:
            room = min(room, canary["size"] - state["n"])
        elif state["settled"] < state["n"] and now - state["last"] < CANARY_WAIT:
            return 0, f"canary: the first {state['n']} sends went; waiting for their outcome before the rest", dropped
        else:
            # Settled (or waited long enough): judged now, before anyone else is sent to.
            problem = _health_problem(conn, account_id, c, force=True)
            if problem:
                store.auto_pause(conn, account_id=account_id, campaign_id=c["id"], reason=problem)
                return 0, None, dropped
            conn.execute("UPDATE campaigns SET canary_done = true WHERE account_id = %s AND id = %s",
                         (account_id, c["id"]))
    limit = messaging_limit(channel)
    if limit is not None and c["spec"]["message"].get("template") and channel["kind"] == "whatsapp":
        used = _reached_24h(conn, account_id, channel, now)
        if used >= limit:
            return 0, (f"messaging limit: {used} of {limit} unique customers reached with templates in the last "
                       "24 h on this business account; sending resumes as the oldest of those fall out of the "
                       "window (raise settings.messaging_limit when Meta raises your tier)"), dropped
        room = min(room, limit - used)
    return room, None, dropped


def _reached_24h(conn, account_id, channel: dict, now: datetime) -> int:
    """Unique customers sent a template from the channel's business account (every number of it) in 24 h."""
    return conn.execute(
        "SELECT count(DISTINCT m.contact_id) AS n FROM messages m JOIN channels ch ON ch.account_id = m.account_id "
        "AND ch.id = m.channel_id WHERE m.account_id = %s AND (ch.id = %s OR (ch.group_id = %s AND ch.kind = 'whatsapp')) "
        "AND m.direction = 'outbound' AND m.kind = 'template' AND m.created_at > %s AND m.status <> 'failed'",
        (account_id, channel["id"], channel["group_id"], now - timedelta(hours=24))).fetchone()["n"]


def _canary(c: dict) -> dict | None:
    cfg = campaign_spec.canary_of(c["spec"])
    return cfg if cfg["size"] > 0 else None


# --- pausing on its own ----------------------------------------------------------------------------------

def _template_problem(conn, account_id, c: dict, channel: dict) -> str | None:
    t = c["spec"]["message"].get("template")
    if not t or channel["kind"] != "whatsapp":
        return None
    rows = conn.execute("SELECT language, status FROM templates WHERE account_id = %s AND waba_id = %s AND name = %s",
                        (account_id, channel["group_id"], t["name"])).fetchall()
    if not rows:
        return None   # a catalog never synced is not checked (the gate sends raw components as they are)
    wanted = [r for r in rows if not t.get("language") or r["language"] == t["language"]]
    if any(r["status"] == "APPROVED" for r in wanted):
        return None
    status = ", ".join(sorted({r["status"] for r in wanted})) or "missing"
    return (f"template {t['name']!r} is {status} at Meta: sends would fail (132015/132016); resume once Meta "
            "approves it again, or cancel")


def _health_problem(conn, account_id, c: dict, force: bool = False) -> str | None:
    """Over the canary (once its outcomes are in) or the latest ``window`` sends: a reason to pause, or None."""
    key = (account_id, c["id"])
    if not force and time.monotonic() - _last_health.get(key, 0.0) < HEALTH_EVERY_S:
        return None
    _last_health[key] = time.monotonic()
    limits = campaign_spec.canary_of(c["spec"])
    window = c["spec"].get("window") or campaign_spec.DEFAULT_WINDOW
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE m.status IN ('delivered', 'read', 'failed')) AS settled, "
        "count(*) FILTER (WHERE m.status = 'failed') AS failed, "
        "count(*) FILTER (WHERE m.status = 'failed' AND m.error_code = ANY(%s)) AS blocked, "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM consent_events e WHERE e.account_id = r.account_id "
        "AND e.contact_id = r.contact_id AND e.action = 'withdrawn' AND e.purpose IN ('marketing', 'all') "
        "AND e.recorded_at >= r.queued_at)) AS opted_out, count(*) AS n "
        "FROM (SELECT * FROM campaign_recipients WHERE account_id = %s AND campaign_id = %s AND state = 'queued' "
        "ORDER BY queued_at DESC LIMIT %s) r LEFT JOIN messages m ON m.account_id = r.account_id AND m.id = r.message_id",
        (list(BLOCKED_CODES), account_id, c["id"], window)).fetchone()
    in_canary = not c["canary_done"] and limits["size"] > 0
    enough = row["settled"] >= (min(limits["size"], MIN_OUTCOMES) if in_canary else MIN_OUTCOMES)
    if not row["n"] or not enough:
        return None
    where = f"the canary's first {row['n']} sends" if in_canary else f"the latest {row['n']} sends"
    checks = (
        ("blocked", row["blocked"] / row["settled"], limits["max_blocked_rate"],
         "Meta declined to deliver (131049/131048)", "check the template's quality rating and the audience"),
        ("failed", row["failed"] / row["settled"], limits["max_failure_rate"], "failed",
         "see the failures by error code in the campaign's counts"),
        ("opted_out", row["opted_out"] / row["n"], limits["max_opt_out_rate"], "opted out since",
         "the message may read as unwanted: review it and the audience"),
    )
    for _, share, limit, what, fix in checks:
        if share > limit:
            return (f"auto-paused: {share:.0%} of {where} {what}, over the {limit:.0%} limit; {fix}, then resume "
                    "(POST /v1/campaigns/{id}/resume) or cancel")
    return None


# --- the thread in the sweeper process -----------------------------------------------------------------------

def run_forever(stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            handled = tick_once()
        except Exception as exc:
            log.warning("campaign feeder tick failed", extra={"error": type(exc).__name__}, exc_info=True)
            handled = 0
        stop.wait(0.01 if handled >= MAX_BATCH else TICK_S)


def start_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="campaign-feeder", daemon=True).start()
    return stop

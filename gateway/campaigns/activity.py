"""A campaign's activity over time: sends, deliveries, reads, replies and failures per time bucket (the campaign
dashboard's chart). Aggregates only: counts and times, no contact, address or message text.

Each event counts once, in the bucket of the time it happened:

- sent: the provider accepted the message (``messages.sent_at``, the first proof of it: the send worker's
  answer or a status webhook that adopted the message; a delivered message without it counts at delivery);
- delivered: its first ``delivered``, ``read`` or ``played`` status (a read message was delivered, even when the
  provider never said so on its own), at the provider's time (``message_events.occurred_at``, else when the
  gateway recorded it);
- read: its first ``read`` or ``played`` status;
- failed: its first ``failed`` status (a permanent refusal at send time, or a failure the provider reported
  later; a message can count as sent and then as failed);
- replied: the recipient's first answer credited to it (``campaign_recipients.replied_at``).

Sends are on the gateway's clock, statuses on the provider's (often whole seconds): a delivery that came right
after its send can fall in the bucket before it.

One statement (after the look-up that says whether the campaign exists), whose cost follows the campaign's
size, not the account's: the campaign's queued recipients (the partial index ``campaign_recipients_queued``),
their messages by primary key and each message's statuses by ``message_events_by_message`` (a LATERAL probe
per message, so an account's other messages are never read). About 0.5 s for 100,000 recipients.

Buckets are whole minutes, hours or days of UTC time (epoch-aligned). ``auto`` picks minutes when the
activity spans at most 3 hours, hours up to 7 days, else days. A bucket finer than ``MAX_BUCKETS`` allows is
coarsened (minute → hour → day), and days are grouped several to a bucket past that (``bucket_seconds`` says
how wide a bucket is). Buckets with nothing in them, between the first and the last event, are zeros.
"""
from __future__ import annotations

from datetime import timedelta, timezone

BUCKETS = ("auto", "minute", "hour", "day")
KEYS = ("sent", "delivered", "read", "replied", "failed")
MAX_BUCKETS = 500
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_NAMES = {60: "minute", 3600: "hour"}

# %(base)s: the finest bucket allowed (seconds), or NULL for auto.
_SQL = """
WITH r AS MATERIALIZED (
    SELECT coalesce(m.sent_at, e.delivered_at) AS sent_at, e.delivered_at, e.read_at, cr.replied_at,
           coalesce(e.failed_at, CASE WHEN m.status = 'failed' THEN m.updated_at END) AS failed_at
    FROM campaign_recipients cr
    JOIN messages m ON m.account_id = cr.account_id AND m.id = cr.message_id
    LEFT JOIN LATERAL (
        SELECT min(coalesce(me.occurred_at, me.created_at)) FILTER (WHERE me.status <> 'failed') AS delivered_at,
               min(coalesce(me.occurred_at, me.created_at)) FILTER (WHERE me.status IN ('read', 'played')) AS read_at,
               min(coalesce(me.occurred_at, me.created_at)) FILTER (WHERE me.status = 'failed') AS failed_at
        FROM message_events me
        WHERE me.account_id = cr.account_id AND me.message_id = cr.message_id
          AND me.status IN ('delivered', 'read', 'played', 'failed')
    ) e ON true
    WHERE cr.account_id = %(a)s AND cr.campaign_id = %(c)s AND cr.state = 'queued'
),
span AS (
    SELECT lo, hi, extract(epoch FROM lo) AS lo_s, extract(epoch FROM hi) AS hi_s,
           coalesce(%(base)s::int, CASE WHEN hi - lo <= interval '3 hours' THEN 60
                                       WHEN hi - lo <= interval '7 days' THEN 3600 ELSE 86400 END) AS base
    FROM (SELECT least(min(sent_at), min(delivered_at), min(read_at), min(replied_at), min(failed_at)) AS lo,
                 greatest(max(sent_at), max(delivered_at), max(read_at), max(replied_at), max(failed_at)) AS hi
          FROM r) b
    WHERE lo IS NOT NULL
),
w0 AS (
    SELECT lo, hi, CASE
        WHEN base <= 60 AND floor(hi_s / 60) - floor(lo_s / 60) < %(cap)s THEN 60
        WHEN base <= 3600 AND floor(hi_s / 3600) - floor(lo_s / 3600) < %(cap)s THEN 3600
        ELSE 86400 * greatest(1, ceil((floor(hi_s / 86400) - floor(lo_s / 86400) + 1) / %(cap)s::numeric))::int
        END AS s
    FROM span
),
w AS (SELECT lo, hi, s, make_interval(secs => s) AS step FROM w0),
c AS (
    SELECT date_bin(w.step, ev.at, timestamptz 'epoch') AS at,
           count(*) FILTER (WHERE ev.kind = 'sent') AS sent,
           count(*) FILTER (WHERE ev.kind = 'delivered') AS delivered,
           count(*) FILTER (WHERE ev.kind = 'read') AS read,
           count(*) FILTER (WHERE ev.kind = 'replied') AS replied,
           count(*) FILTER (WHERE ev.kind = 'failed') AS failed
    FROM w CROSS JOIN r
    CROSS JOIN LATERAL (VALUES ('sent', r.sent_at), ('delivered', r.delivered_at), ('read', r.read_at),
                               ('replied', r.replied_at), ('failed', r.failed_at)) AS ev(kind, at)
    WHERE ev.at IS NOT NULL
    GROUP BY 1
)
SELECT w.s, g.at, coalesce(c.sent, 0) AS sent, coalesce(c.delivered, 0) AS delivered, coalesce(c.read, 0) AS read,
       coalesce(c.replied, 0) AS replied, coalesce(c.failed, 0) AS failed
FROM w
CROSS JOIN LATERAL generate_series(date_bin(w.step, w.lo, timestamptz 'epoch'),
                                   date_bin(w.step, w.hi, timestamptz 'epoch'),
                                   w.step) AS g(at)
LEFT JOIN c ON c.at = g.at
ORDER BY g.at
"""


def activity(conn, *, account_id, campaign_id, bucket: str = "auto") -> dict | None:
    """The campaign's activity series, or None when the account has no such campaign.

    ``bucket``: auto, minute, hour or day (ValueError otherwise); the answer's ``bucket`` says which was used
    (a finer one than ``MAX_BUCKETS`` allows is coarsened). ``from`` is the first bucket's start and ``to`` the
    last bucket's end (both null while nothing has happened); ``totals`` add up the series.
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket is {', '.join(BUCKETS[:-1])} or {BUCKETS[-1]}")
    found = conn.execute("SELECT 1 FROM campaigns WHERE account_id = %s AND id = %s",
                         (account_id, campaign_id)).fetchone()
    if found is None:
        return None
    rows = conn.execute(_SQL, {"a": account_id, "c": campaign_id, "cap": MAX_BUCKETS,
                               "base": _SECONDS.get(bucket)}).fetchall()
    totals = {k: sum(r[k] for r in rows) for k in KEYS}
    if not rows:
        width = _SECONDS.get(bucket, 60)
        return {"bucket": _NAMES.get(width, "day"), "bucket_seconds": width, "from": None, "to": None,
                "series": [], "totals": totals}
    width = rows[0]["s"]
    starts = [r["at"].astimezone(timezone.utc) for r in rows]
    return {
        "bucket": _NAMES.get(width, "day"), "bucket_seconds": width,
        "from": starts[0].isoformat(),
        "to": (starts[-1] + timedelta(seconds=width)).isoformat(),
        "series": [{"at": at.isoformat(), **{k: r[k] for k in KEYS}} for at, r in zip(starts, rows)],
        "totals": totals,
    }

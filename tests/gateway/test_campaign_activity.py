"""GET /v1/campaigns/{id}/activity: a campaign's sends, deliveries, reads, replies and failures over time.

A real campaign goes out through the feeder, the send gate, the send workers and the sandbox provider, whose
status webhooks come back; each event must then sit in the bucket of the time it happened. The bucket
choice, the zero-filled gaps and the cap on the number of buckets are checked on a real campaign's rows
moved in time (a campaign whose activity spans hours, days or years)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from gateway import accounts, db
from gateway.campaigns import activity
from tests.gateway import test_campaigns, test_send_end_to_end
from tests.gateway.test_campaigns import _act, _campaign, _contact, _get, _run, _settled, _setup
from tests.gateway.test_send_end_to_end import control
from tests.webhooks.test_receiver import text, wa_body

KEYS = ("sent", "delivered", "read", "replied", "failed")
# The fixtures the campaign tests run on: the gateway served over HTTP, the sandbox provider, queued sends flushed.
gateway_url = test_send_end_to_end.gateway_url
sandbox = test_send_end_to_end.sandbox
_flush_enqueues = test_campaigns._flush_enqueues


def _activity(inbox, campaign_id, **query):
    r = inbox.api("GET", f"/v1/campaigns/{campaign_id}/activity", query_string=query)
    assert r.status_code == 200, r.json
    return r.json


def _recorded(account_id, campaign_id) -> list[dict]:
    """What happened to each recipient's message, read straight from the rows: its send (the provider's
    acceptance), its statuses and the recipient's reply."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT r.message_id, r.replied_at, m.sent_at FROM campaign_recipients r JOIN messages m "
            "ON m.account_id = r.account_id AND m.id = r.message_id WHERE r.account_id = %s AND r.campaign_id = %s",
            (account_id, campaign_id)).fetchall()
        statuses = conn.execute(
            "SELECT message_id, status, coalesce(occurred_at, created_at) AS at FROM message_events "
            "WHERE account_id = %s AND message_id = ANY(%s)",
            (account_id, [r["message_id"] for r in rows])).fetchall()
    out = []
    for r in rows:
        mine = [s for s in statuses if s["message_id"] == r["message_id"]]

        def first(*words):
            return min((s["at"] for s in mine if s["status"] in words), default=None)
        out.append({"sent": r["sent_at"], "delivered": first("delivered", "read", "played"),
                    "read": first("read", "played"), "replied": r["replied_at"], "failed": first("failed")})
    return out


def _expected(recorded: list[dict], width: int) -> dict[str, dict]:
    """Bucket start (ISO) → counts, for the non-empty buckets."""
    out: dict[str, dict] = {}
    for r in recorded:
        for k in KEYS:
            if r[k] is not None:
                at = datetime.fromtimestamp(int(r[k].timestamp()) // width * width, timezone.utc).isoformat()
                out.setdefault(at, dict.fromkeys(KEYS, 0))[k] += 1
    return out


def _check_shape(body: dict) -> None:
    """Buckets are contiguous from ``from`` to ``to``, one width apart, and the totals add them up."""
    width = body["bucket_seconds"]
    starts = [datetime.fromisoformat(b["at"]) for b in body["series"]]
    assert starts[0] == datetime.fromisoformat(body["from"])
    assert starts[-1] + timedelta(seconds=width) == datetime.fromisoformat(body["to"])
    assert all((b - a).total_seconds() == width for a, b in zip(starts, starts[1:]))
    assert all(s.timestamp() % width == 0 for s in starts)
    assert len(starts) <= activity.MAX_BUCKETS
    assert body["totals"] == {k: sum(b[k] for b in body["series"]) for k in KEYS}


def _non_empty(body: dict) -> dict[str, dict]:
    return {b["at"]: {k: b[k] for k in KEYS} for b in body["series"] if any(b[k] for k in KEYS)}


# --- a real campaign -----------------------------------------------------------------------------------------

def test_each_event_counts_in_the_bucket_it_happened_in(client, sandbox, conn):
    inbox, ch = _setup(client, sandbox)
    ana, ana_phone = _contact(inbox, profile={"first_name": "Ana", "plan": "Plus"})
    luis, _ = _contact(inbox)
    leo, leo_phone = _contact(inbox)
    eva, eva_phone = _contact(inbox)
    skipped, _ = _contact(inbox, consent=False)                          # never sent: counts nowhere
    # Leo's phone reports delivery but never a read; Eva's number is refused at once (a permanent error).
    control(sandbox, "/_sandbox/config", {"scope": f"to:{leo_phone.lstrip('+')}", "statuses": ["sent", "delivered"]})
    control(sandbox, "/_sandbox/config", {"scope": f"to:{eva_phone.lstrip('+')}", "whatsapp_error_code": 131026})
    campaign = _campaign(inbox, ch, [ana, luis, leo, eva, skipped])

    before = _activity(inbox, campaign["id"])                          # a draft: nothing happened yet
    assert before == {"bucket": "minute", "bucket_seconds": 60, "from": None, "to": None, "series": [],
                      "totals": dict.fromkeys(KEYS, 0)}

    _act(inbox, campaign, "start")
    _run(inbox, _settled(inbox, campaign), what="the campaign to complete")
    _run(inbox, lambda: (n := _get(inbox, campaign)["counts"])["read"] == 2 and n["delivered"] == 3,
         what="the statuses")
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(ana_phone.lstrip("+"), "¡Gracias!",
                                                                          ts=int(time.time()))]))
    counts = _run(inbox, lambda: (n := _get(inbox, campaign)["counts"])["replied"] == 1 and n,
                  what="the reply counted")

    body = _activity(inbox, campaign["id"])
    # Everything happened within seconds: minutes.
    assert body["bucket"] == "minute" and body["bucket_seconds"] == 60
    assert body["totals"] == {"sent": 3, "delivered": 3, "read": 2, "replied": 1, "failed": 1}
    # The same figures as the campaign's progress (no message failed after it was sent here).
    assert body["totals"] == {"sent": counts["sent"], "delivered": counts["delivered"], "read": counts["read"],
                              "replied": counts["replied"], "failed": counts["failed_total"]}
    _check_shape(body)
    # Each event in the minute of its own time, as the rows recorded it.
    assert _non_empty(body) == _expected(_recorded(inbox.account_id, campaign["id"]), 60)
    # Asked for hours or days: one bucket holding everything.
    for bucket in ("hour", "day"):
        coarse = _activity(inbox, campaign["id"], bucket=bucket)
        assert coarse["bucket"] == bucket and len(coarse["series"]) in (1, 2) and coarse["totals"] == body["totals"]
        _check_shape(coarse)
    # Aggregates only: no contact, address or message in the answer, and no read row in the audit log.
    blob = json.dumps(body)
    assert all(x not in blob for x in (ana, luis, leo, eva, ana_phone.lstrip("+"), "Gracias"))
    logged = conn.execute("SELECT action FROM audit_log WHERE account_id = %s AND action LIKE 'read:%%'",
                          (inbox.account_id,)).fetchall()
    assert not [r for r in logged if r["action"].endswith("/activity")]
    # The service answers alike.
    with db.connection() as c:
        assert activity.activity(c, account_id=inbox.account_id, campaign_id=campaign["id"]) == body


# --- bucket choice, gaps and the cap, on a real campaign's rows moved in time --------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _move(account_id, campaign_id, plan: dict[int, dict]) -> None:
    """Set the recorded times of the campaign's messages: ``plan[i]`` for the i-th recipient (in feed order)
    gives sent / delivered / read / replied as offsets from T0 (a missing key leaves that event out)."""
    with db.connection() as conn:
        rows = conn.execute("SELECT contact_id, message_id FROM campaign_recipients WHERE account_id = %s "
                            "AND campaign_id = %s ORDER BY seq", (account_id, campaign_id)).fetchall()
        for i, r in enumerate(rows):
            p = {k: T0 + v for k, v in plan.get(i, {}).items()}
            conn.execute("UPDATE messages SET sent_at = %s WHERE account_id = %s AND id = %s",
                         (p.get("sent"), account_id, r["message_id"]))
            conn.execute("UPDATE campaign_recipients SET replied_at = %s WHERE account_id = %s AND campaign_id = %s "
                         "AND contact_id = %s", (p.get("replied"), account_id, campaign_id, r["contact_id"]))
            for status in ("delivered", "read"):
                if status in p:
                    conn.execute("UPDATE message_events SET occurred_at = %s WHERE account_id = %s "
                                 "AND message_id = %s AND status = %s", (p[status], account_id, r["message_id"], status))
                else:
                    conn.execute("DELETE FROM message_events WHERE account_id = %s AND message_id = %s "
                                 "AND status = %s", (account_id, r["message_id"], status))


def test_bucket_choice_zero_filled_gaps_and_the_cap(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    ids = [_contact(inbox)[0] for _ in range(3)]
    campaign = _campaign(inbox, ch, ids)
    _act(inbox, campaign, "start")
    _run(inbox, lambda: _get(inbox, campaign)["counts"]["read"] == 3, what="the reads")
    cid, m = campaign["id"], timedelta(minutes=1)

    def check(plan, used, width, first, count, **query):
        _move(inbox.account_id, cid, plan)
        body = _activity(inbox, cid, **query)
        assert (body["bucket"], body["bucket_seconds"]) == (used, width), body["bucket"]
        assert body["from"] == first.isoformat() and len(body["series"]) == count
        _check_shape(body)
        happened = [{k: (T0 + p[k] if k in p else None) for k in KEYS} for p in plan.values()]
        assert _non_empty(body) == _expected(happened, width)
        return body

    # Sent over a minute, read over the next hour, a reply two hours on: minutes, the quiet ones as zeros.
    short = {0: {"sent": 10 * m + timedelta(seconds=30), "delivered": 12 * m, "read": 47 * m},
             1: {"sent": 10 * m + timedelta(seconds=40), "delivered": 11 * m, "replied": 150 * m},
             2: {"sent": 11 * m + timedelta(seconds=5), "delivered": 11 * m + timedelta(seconds=9),
                 "read": 11 * m + timedelta(seconds=50)}}
    body = check(short, "minute", 60, T0 + 10 * m, 141)
    assert body["to"] == (T0 + 151 * m).isoformat()
    assert body["series"][0] == {"at": (T0 + 10 * m).isoformat(), "sent": 2, "delivered": 0, "read": 0,
                                 "replied": 0, "failed": 0}
    assert body["series"][1] == {"at": (T0 + 11 * m).isoformat(), "sent": 1, "delivered": 2, "read": 1,
                                 "replied": 0, "failed": 0}
    assert body["series"][20] == {"at": (T0 + 30 * m).isoformat(), **dict.fromkeys(KEYS, 0)}   # a quiet minute
    assert body["totals"] == {"sent": 3, "delivered": 3, "read": 2, "replied": 1, "failed": 0}
    # The same activity in hours, or days, when asked.
    assert check(short, "hour", 3600, T0, 3, bucket="hour")["totals"] == body["totals"]
    assert check(short, "day", 86400, T0.replace(hour=0), 1, bucket="day")["series"][0]["sent"] == 3

    # A reply three days on: hours (73 of them), and minutes asked for are coarsened to hours (over 500).
    days = {**short, 1: {**short[1], "replied": timedelta(days=3)}}
    check(days, "hour", 3600, T0, 73)
    check(days, "hour", 3600, T0, 73, bucket="minute")
    # A month: days, zeros between.
    month = {**short, 1: {**short[1], "replied": timedelta(days=30)}}
    body = check(month, "day", 86400, T0.replace(hour=0), 31)
    assert [b["replied"] for b in body["series"]] == [0] * 30 + [1]
    # Over 500 days: several days to a bucket.
    years = {**short, 1: {**short[1], "replied": timedelta(days=730)}}
    body = check(years, "day", 2 * 86400, T0.replace(hour=0), 366)
    assert body["totals"]["replied"] == 1 and body["series"][-1]["replied"] == 1


# --- walls and bad input -------------------------------------------------------------------------------------

def test_another_accounts_campaign_is_not_found_and_a_bad_bucket_is_a_400(client, sandbox):
    inbox, ch = _setup(client, sandbox)
    cid, _ = _contact(inbox)
    campaign = _campaign(inbox, ch, [cid])
    other, _ = _setup(client, sandbox)
    r = other.api("GET", f"/v1/campaigns/{campaign['id']}/activity")
    assert r.status_code == 404 and r.json["status"] == 404 and campaign["id"] in r.json["detail"]
    assert r.mimetype == "application/problem+json"
    with db.connection() as c:
        assert activity.activity(c, account_id=other.account_id, campaign_id=campaign["id"]) is None
    for unknown in ("018f0000-0000-7000-8000-000000000000", "not-a-uuid"):
        assert inbox.api("GET", f"/v1/campaigns/{unknown}/activity").status_code == 404
    bad = inbox.api("GET", f"/v1/campaigns/{campaign['id']}/activity?bucket=week")
    assert bad.status_code == 400 and bad.json["type"].endswith("/bad-filter")
    assert all(w in bad.json["detail"] for w in ("auto", "minute", "hour", "day"))
    # The scope of GET /v1/campaigns/{id}: messages:read.
    with db.connection() as c:
        _, reader = accounts.create_api_key(c, account_id=inbox.account_id, name="reader", scopes=["messages:read"],
                                            actor="test")
        _, other_scope = accounts.create_api_key(c, account_id=inbox.account_id, name="templates",
                                                 scopes=["templates:write"], actor="test")
    url = f"/v1/campaigns/{campaign['id']}/activity?bucket=hour"
    assert client.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert client.get(url, headers={"Authorization": f"Bearer {other_scope}"}).status_code == 403

"""Business hours for the out-of-hours shares: which schedule applies to each channel, as UTC intervals.

A channel's schedule is the one the automation engine would use: the first enabled ``business_hours`` rule,
in priority order, that covers the channel (its own, or one for every channel). Its opening hours over the
report's range become a ``tstzmultirange`` so the database tests each message with one containment check;
the intervals come from the same code as ``hours.is_open`` (``_hours_on``/``_at``), so a holiday, an
exception or a DST change is treated exactly as the engine treats it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from gateway.automation import hours


def channel_schedules(conn, *, account_id) -> dict:
    """{channel_id: schedule} for the account's channels that have business hours."""
    rules = conn.execute(
        "SELECT channel_id, definition FROM automations WHERE account_id = %s AND kind = 'business_hours' "
        "AND enabled ORDER BY priority, id", (account_id,)).fetchall()
    if not rules:
        return {}
    out = {}
    for ch in conn.execute("SELECT id FROM channels WHERE account_id = %s", (account_id,)).fetchall():
        for rule in rules:
            if rule["channel_id"] is None or rule["channel_id"] == ch["id"]:
                schedule = (rule["definition"] or {}).get("schedule")
                if isinstance(schedule, dict):
                    out[ch["id"]] = schedule
                break
    return out


def open_intervals(schedule: dict, lo: datetime, hi: datetime, *, default_tz: str | None = None
                   ) -> list[tuple[datetime, datetime]]:
    """The schedule's opening intervals (UTC, half-open) that meet [lo, hi), merged where they touch."""
    tz = hours.zone(schedule, default_tz)
    day = lo.astimezone(tz).date() - timedelta(days=1)
    last = hi.astimezone(tz).date() + timedelta(days=1)
    spans: list[tuple[datetime, datetime]] = []
    while day <= last:
        for start, end in hours._hours_on(schedule, day):
            a, b = hours._at(day, start, tz), hours._at(day, end, tz)
            if b <= lo or a >= hi or b <= a:
                continue
            if spans and a <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], b))
            else:
                spans.append((a, b))
        day += timedelta(days=1)
    return spans


def multirange(spans: list[tuple[datetime, datetime]]) -> str:
    """PostgreSQL text for a tstzmultirange."""
    return "{" + ",".join(f'["{a.isoformat()}","{b.isoformat()}")' for a, b in spans) + "}"


def for_range(conn, *, account_id, lo: datetime, hi: datetime, default_tz: str) -> tuple[list, list]:
    """(channel ids, multirange texts) for the channels that have business hours, ready for unnest()."""
    found = channel_schedules(conn, account_id=account_id)
    ids = list(found)
    return ids, [multirange(open_intervals(found[i], lo, hi, default_tz=default_tz)) for i in ids]

"""Business hours: a weekly schedule in an IANA time zone, with holidays and exceptions.

A schedule (JSON/YAML)::

    {"timezone": "Europe/Madrid",              # optional: the account's time zone when absent
     "weekly": {"mon": [["09:00", "14:00"], ["16:00", "19:00"]], "sat": [["10:00", "13:00"]]},
     "holidays": ["2026-12-25", {"from": "2026-08-01", "to": "2026-08-15"}],
     "exceptions": [{"date": "2026-12-24", "hours": [["09:00", "13:00"]]}]}

Opening hours are wall-clock times in the zone, so "09:00" stays 09:00 on both sides of a DST change.
Intervals are half-open ([start, end)), "24:00" ends a day, and an interval never crosses midnight (write
22:00-24:00 and 00:00-02:00). An exception's hours replace that day's (an empty list closes it); a holiday
closes the whole day. All comparisons are done in UTC: Python compares two datetimes that share a tzinfo
by wall clock, ignoring DST folds.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
# How far next_open looks: a year of holidays is the longest plausible closure.
_HORIZON_DAYS = 400


def _minutes(value: str) -> int:
    if value == "24:00":
        return 24 * 60
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def problems(schedule, pointer: str = "", *, default_tz: str | None = None) -> list[dict]:
    """Every problem of a schedule as {pointer, detail}; empty when it is valid."""
    out: list[dict] = []

    def bad(p, detail):
        out.append({"pointer": pointer + p, "detail": detail})

    if not isinstance(schedule, dict):
        bad("", "the schedule must be an object with 'weekly' (and optionally 'timezone', 'holidays', 'exceptions')")
        return out
    for name in schedule:
        if name not in ("timezone", "weekly", "holidays", "exceptions"):
            bad(f"/{name}", "unknown field; use timezone, weekly, holidays, exceptions")
    tz = schedule.get("timezone", default_tz)
    if tz is not None:
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            bad("/timezone", f"{tz!r} is not an IANA time zone (e.g. Europe/Madrid)")
    weekly = schedule.get("weekly")
    opens = False
    if not isinstance(weekly, dict):
        bad("/weekly", "required: an object of day (mon..sun) → list of [\"HH:MM\", \"HH:MM\"] intervals")
    else:
        for day, intervals in weekly.items():
            if day not in DAYS:
                bad(f"/weekly/{day}", f"unknown day; use {', '.join(DAYS)}")
                continue
            before = len(out)
            _intervals(intervals, f"/weekly/{day}", bad)
            opens = opens or (len(out) == before and bool(intervals))
        if not opens and not out:
            bad("/weekly", "the schedule is never open: give at least one interval")
    holidays = schedule.get("holidays", [])
    if not isinstance(holidays, list):
        bad("/holidays", "must be a list")
        holidays = []
    for i, h in enumerate(holidays):
        if isinstance(h, str):
            if _date(h) is None:
                bad(f"/holidays/{i}", f"{h!r} is not a date (YYYY-MM-DD)")
        elif isinstance(h, dict):
            start, end = _date(h.get("from")), _date(h.get("to"))
            if start is None:
                bad(f"/holidays/{i}/from", "required: a date (YYYY-MM-DD)")
            if end is None:
                bad(f"/holidays/{i}/to", "required: a date (YYYY-MM-DD)")
            if start and end and end < start:
                bad(f"/holidays/{i}", "'to' is before 'from'")
        else:
            bad(f"/holidays/{i}", "a date (YYYY-MM-DD) or {\"from\": date, \"to\": date}")
    exceptions = schedule.get("exceptions", [])
    if not isinstance(exceptions, list):
        bad("/exceptions", "must be a list")
        exceptions = []
    for i, ex in enumerate(exceptions):
        if not isinstance(ex, dict):
            bad(f"/exceptions/{i}", "an object {\"date\": \"YYYY-MM-DD\", \"hours\": [[\"HH:MM\", \"HH:MM\"], ...]}")
            continue
        if _date(ex.get("date")) is None:
            bad(f"/exceptions/{i}/date", "required: a date (YYYY-MM-DD)")
        if "hours" not in ex:
            bad(f"/exceptions/{i}/hours", "required: the day's intervals ([] closes the day)")
        else:
            _intervals(ex["hours"], f"/exceptions/{i}/hours", bad)
    return out


def _intervals(intervals, p, bad) -> None:
    if not isinstance(intervals, list):
        bad(p, "a list of [\"HH:MM\", \"HH:MM\"] intervals")
        return
    spans = []
    for j, iv in enumerate(intervals):
        if not (isinstance(iv, (list, tuple)) and len(iv) == 2 and all(isinstance(x, str) for x in iv)):
            bad(f"{p}/{j}", "an interval is [\"HH:MM\", \"HH:MM\"]")
            continue
        start, end = iv
        if not _HHMM.match(start) or start == "24:00":
            bad(f"{p}/{j}/0", f"{start!r} is not a time HH:MM (00:00-23:59)")
            continue
        if not _HHMM.match(end):
            bad(f"{p}/{j}/1", f"{end!r} is not a time HH:MM (00:00-24:00)")
            continue
        if _minutes(end) <= _minutes(start):
            bad(f"{p}/{j}", f"ends ({end}) at or before it starts ({start}); split an interval across "
                            "midnight in two (…-24:00 and 00:00-…)")
            continue
        spans.append((_minutes(start), _minutes(end), j))
    spans.sort()
    for (s1, e1, _), (s2, _e2, j2) in zip(spans, spans[1:]):
        if s2 < e1:
            bad(f"{p}/{j2}", "overlaps another interval of the same day")


def _date(value) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value   # YAML reads 2026-12-25 as a date
    try:
        return date.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None


def zone(schedule: dict, default_tz: str | None = None) -> ZoneInfo:
    return ZoneInfo(str(schedule.get("timezone") or default_tz or "UTC"))


def _hours_on(schedule: dict, day: date) -> list[tuple[int, int]]:
    """The day's opening intervals in wall-clock minutes: an exception, else closed on a holiday, else weekly."""
    for ex in schedule.get("exceptions") or []:
        if _date(ex.get("date")) == day:
            return sorted((_minutes(s), _minutes(e)) for s, e in ex.get("hours") or [])
    for h in schedule.get("holidays") or []:
        if isinstance(h, dict):
            if _date(h.get("from")) <= day <= _date(h.get("to")):
                return []
        elif _date(h) == day:
            return []
    return sorted((_minutes(s), _minutes(e)) for s, e in (schedule.get("weekly") or {}).get(DAYS[day.weekday()], []))


def _at(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time. A time skipped by a spring-forward (02:30 in Madrid on the last
    Sunday of March) resolves as the offset before the gap gives it, i.e. just after the gap (03:30)."""
    if minutes >= 24 * 60:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    else:
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return local.astimezone(timezone.utc)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("give an aware datetime (UTC or any zone), not a naive one")
    return when.astimezone(timezone.utc)


def is_open(schedule: dict, when: datetime, *, default_tz: str | None = None) -> bool:
    tz = zone(schedule, default_tz)
    now = _utc(when)
    local_day = now.astimezone(tz).date()
    # The instant may fall in the day before's last interval only through "24:00", handled by _at.
    for day in (local_day - timedelta(days=1), local_day):
        for start, end in _hours_on(schedule, day):
            if _at(day, start, tz) <= now < _at(day, end, tz):
                return True
    return False


def next_open(schedule: dict, when: datetime, *, default_tz: str | None = None) -> datetime | None:
    """``when`` itself if open then; else the next instant the schedule opens, in its time zone (None: never
    within a year)."""
    tz = zone(schedule, default_tz)
    now = _utc(when)
    local_day = now.astimezone(tz).date()
    for offset in range(-1, _HORIZON_DAYS):
        day = local_day + timedelta(days=offset)
        for start, end in _hours_on(schedule, day):
            opens, closes = _at(day, start, tz), _at(day, end, tz)
            if closes <= now:
                continue
            return (now if opens <= now else opens).astimezone(tz)
    return None


_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "pt": ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
}


def placeholders(moment: datetime | None, tz: ZoneInfo, language: str | None) -> dict[str, str]:
    """What a notice can say about the next opening, in the schedule's zone: {next_open} ("Monday 30/03/2026
    09:00"), {next_open_day}, {next_open_date} (2026-03-30), {next_open_time} (09:00), {timezone}."""
    if moment is None:
        return {"next_open": "", "next_open_day": "", "next_open_date": "", "next_open_time": "", "timezone": tz.key}
    local = moment.astimezone(tz)
    names = _WEEKDAYS.get((language or "en").split("-")[0].split("_")[0].lower(), _WEEKDAYS["en"])
    day = names[local.weekday()]
    return {"next_open": f"{day} {local:%d/%m/%Y %H:%M}", "next_open_day": day,
            "next_open_date": local.date().isoformat(), "next_open_time": f"{local:%H:%M}", "timezone": tz.key}

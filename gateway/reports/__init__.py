"""Contact-center reports: ``GET /v1/reports/summary`` and ``gateway reports summary``.

A report covers the days ``from``..``to`` (inclusive) in the account's time zone, grouped by ``day``,
``week`` (ISO weeks, Monday first), ``channel``, ``team`` or ``agent``, with a total over the whole range.
Each figure is anchored on its own event: a figure lands in the day (or week) of that event.

**Conversations.** A thread is one per contact and channel and lives for ever; a *conversation* is a
thread's span from its creation or its reopening to its resolution (a ``thread_events`` status row into
``resolved``; resolutions recorded before migration 0017 are not known). A message belongs to the
conversation whose resolution is the first at or after it, or to the thread's open conversation. A
later conversation starts when the thread reopens: the customer's first message after the previous
resolution, or a person reopening it, whichever came first. A customer's answer to a survey (its score, or
the follow-up comment) is not the customer coming back: it starts nothing and reopens nothing.

**Who is a person.** *A person's message* is an outbound message that is not an automation's answer
(``messages.automated``), not the survey, not a campaign message, not a keyword confirmation (STOP/START),
and not failed. *Any reply* counts automation answers and keyword confirmations too.

Figures (``null`` when there is nothing to compute them from):

- ``inbound_messages``: customer messages received (their time in the range; survey answers included).
- ``conversations``: conversations whose first customer message is in the range (they may have started
  earlier, when a person reopened the thread or the business wrote first).
- ``first_response_median_s``, ``first_response_p90_s``: seconds from a conversation's first customer
  message to the first message by a person after it, before the conversation's resolution; over the
  conversations above that got one (anchored on the first customer message). What contact centers report.
- ``first_response_any_median_s``, ``first_response_any_p90_s``: the same with any reply, automation's included.
- ``service_level``: the share of those conversations first answered by a person within ``sla_seconds``
  (query parameter; else the account's ``report_sla_seconds``; else 60). Counted: the conversations a
  person answered, and those still waiting for a person (not resolved) for longer than the target; a
  conversation resolved without a person's answer (contained by automation, or closed) is not counted.
- ``resolved``: conversations resolved in the range (anchored on the resolution).
- ``resolution_median_s``, ``resolution_p90_s``: resolution − conversation start.
- ``fcr_rate``: first-contact resolution, across channels. A resolved conversation is *not* a first-contact
  resolution when, within ``fcr_days`` after it (query parameter; else the account's ``report_fcr_days``;
  else 7), the customer wrote again — on any thread of any channel, as the same contact or any contact
  merged into the same one — or a person reopened the thread. The share counts the conversations whose
  window is over, and those where the customer already came back.
- ``fcr_pending``: resolved conversations whose window is not over and whose customer has not come back
  (left out of ``fcr_rate`` until it is).
- ``reopen_rate``: the share of the resolved conversations whose thread was reopened afterwards (so far,
  however late: resolved again later, or not resolved now).
- ``containment_rate``: the share of the resolved conversations with no hand-off to a person
  (``thread_events`` handler → human) and no message by a person.
- ``csat_responses``, ``csat_average`` (1–5), ``csat_satisfied_share`` (share of 4 and 5);
  ``nps_responses``, ``nps`` (promoters 9–10 minus detractors 0–6, in points of −100..100);
  ``ces_responses``, ``ces_average`` (1–7): survey answers given in the range.
- ``out_of_hours_reply_share``: the share of messages answered outside business hours — of a person's
  messages sent in the range, those sent while the channel's business hours were closed.
  ``out_of_hours_inbound_share``: the same for customer messages received. Business hours are the first
  enabled ``business_hours`` automation rule covering the channel (see gateway/automation/hours.py);
  channels without one are left out, and with none at all both figures are ``null``.

**Team and agent.** A conversation's figures go to the team and agent holding the thread when it was
resolved (its last ``assigned``/``unassigned`` event then), or holding it now if it is not resolved;
a message's and a survey answer's follow their conversation's. ``group`` is ``null`` for unassigned.

Every query is scoped by ``account_id`` and returns aggregates only: a report holds no personal data.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from gateway import db
from gateway.reports import queries, schedule
from gateway.reports.params import (DEFAULT_FCR_DAYS, DEFAULT_SLA_SECONDS, GROUPINGS, Params, ParamsError,
                                    parse)
from gateway.reports.output import FIGURES, to_csv, to_table

__all__ = ["FIGURES", "GROUPINGS", "Params", "ParamsError", "parse", "summary", "to_csv", "to_table"]


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    """The local midnight starting day ``d``, as a UTC instant."""
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(timezone.utc)


def _share(n, d):
    return None if not d else round(n / d, 4)


def _r(x, digits=1):
    return None if x is None else round(float(x), digits)


def _figures(raw: dict) -> dict:
    g = lambda name: raw.get(name) or 0  # noqa: E731
    return {
        "inbound_messages": g("inbound_messages"),
        "conversations": g("conversations"),
        "first_response_median_s": _r(raw.get("first_response_median_s")),
        "first_response_p90_s": _r(raw.get("first_response_p90_s")),
        "first_response_any_median_s": _r(raw.get("first_response_any_median_s")),
        "first_response_any_p90_s": _r(raw.get("first_response_any_p90_s")),
        "service_level": _share(g("sl_within"), g("sl_total")),
        "resolved": g("resolved"),
        "resolution_median_s": _r(raw.get("resolution_median_s")),
        "resolution_p90_s": _r(raw.get("resolution_p90_s")),
        "fcr_rate": _share(g("fcr_yes"), g("fcr_total")),
        "fcr_pending": g("fcr_pending"),
        "reopen_rate": _share(g("reopened"), g("resolved")),
        "containment_rate": _share(g("contained"), g("resolved")),
        "csat_responses": g("csat_responses"),
        "csat_average": _r(raw.get("csat_average"), 2),
        "csat_satisfied_share": _share(g("csat_satisfied"), g("csat_responses")),
        "nps_responses": g("nps_responses"),
        "nps": None if not g("nps_responses") else
        round(100 * (g("nps_promoters") - g("nps_detractors")) / g("nps_responses"), 1),
        "ces_responses": g("ces_responses"),
        "ces_average": _r(raw.get("ces_average"), 2),
        "out_of_hours_reply_share": _share(g("ooh_reply_closed"), g("ooh_reply_n")),
        "out_of_hours_inbound_share": _share(g("ooh_inbound_closed"), g("ooh_inbound_n")),
    }


def _has_teams(conn) -> bool:
    return conn.execute("SELECT to_regclass('teams') IS NOT NULL AND to_regclass('agents') IS NOT NULL AS ok"
                        ).fetchone()["ok"]


def _periods(p: Params) -> list[tuple[str, str, date]]:
    """(group, label, first day inside the range) of each day, or of each ISO week (its Monday's date)."""
    out, day = [], p.start
    if p.group_by == "day":
        while day <= p.end:
            out.append((day.isoformat(), day.isoformat(), day))
            day += timedelta(days=1)
        return out
    monday = day - timedelta(days=day.weekday())
    while monday <= p.end:
        year, week, _ = monday.isocalendar()
        out.append((monday.isoformat(), f"{year}-W{week:02d}", max(monday, p.start)))
        monday += timedelta(days=7)
    return out


def _dimension(conn, account_id, group_by: str) -> list[tuple[str, str]]:
    """(group, label) of every channel, team or agent of the account, by label."""
    if group_by == "channel":
        rows = conn.execute("SELECT id::text AS id, name || ' (' || kind || ')' AS label FROM channels "
                            "WHERE account_id = %s ORDER BY name, id", (account_id,)).fetchall()
    elif group_by == "team":
        rows = conn.execute("SELECT id::text AS id, name AS label FROM teams WHERE account_id = %s ORDER BY name, id",
                            (account_id,)).fetchall()
    else:
        rows = conn.execute("SELECT id::text AS id, coalesce(name, external_id) AS label FROM agents "
                            "WHERE account_id = %s ORDER BY 2, id", (account_id,)).fetchall()
    return [(r["id"], r["label"]) for r in rows]


def _run(conn, statements: list[str], args: dict, parallel: bool) -> list[list[dict]]:
    """Each statement's rows, in order. With ``parallel``, the first two (the heavy ones, about equal) run at
    once, the second on another pooled connection - when one is free right now; else one after the other
    here. Under READ COMMITTED consecutive statements see the database at different instants anyway."""
    # Sorts and hashes of a month of a busy account (a few hundred thousand rows) fit in memory with this.
    conn.execute("SET LOCAL work_mem = '64MB'")
    with ExitStack() as stack:
        other = None
        if parallel and len(statements) > 1:
            try:
                other = stack.enter_context(db.connection(timeout=0.05))
            except db.DatabaseUnavailable:
                other = None
        if other is None:
            return [conn.execute(sql, args).fetchall() for sql in statements]

        def second():
            other.execute("SET LOCAL work_mem = '64MB'")
            return other.execute(statements[1], args).fetchall()

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(second)
            first = conn.execute(statements[0], args).fetchall()
            rest = [conn.execute(sql, args).fetchall() for sql in statements[2:]]
            return [first, pending.result(), *rest]


def summary(conn, *, account_id, params: Params, now: datetime | None = None, parallel: bool = False) -> dict:
    """The report as a dict: parameters, ``groups`` (one per period, channel, team or agent, each with every
    figure) and ``total``. ``now`` (default: the database's) decides which FCR windows are over and which
    unanswered conversations have waited past the target. ``parallel``: run the two heavy statements at once
    on two connections (the API and the CLI do; leave it off when ``conn`` holds writes not committed yet,
    which the other connection would not see)."""
    account = conn.execute("SELECT timezone, report_fcr_days, report_sla_seconds, now() AS now FROM accounts "
                           "WHERE id = %s", (account_id,)).fetchone()
    if account is None:
        raise LookupError("no such account")
    if params.group_by in ("team", "agent") and not _has_teams(conn):
        raise ParamsError(422, [{"parameter": "group_by", "detail": "team and agent reports need the teams and "
                                 "agents tables (migration 0018): run `gateway migrate`"}])
    tz_name = account["timezone"] or "UTC"
    tz = ZoneInfo(tz_name)
    lo, hi = _midnight(params.start, tz), _midnight(params.end + timedelta(days=1), tz)
    periods = _periods(params) if params.group_by in ("day", "week") else []
    fcr_days = params.fcr_days or account["report_fcr_days"] or DEFAULT_FCR_DAYS
    sla = params.sla_seconds or account["report_sla_seconds"] or DEFAULT_SLA_SECONDS
    now = now or account["now"]
    bh_ch, bh_open = schedule.for_range(conn, account_id=account_id, lo=lo, hi=hi, default_tz=tz_name)
    args = {"a": account_id, "lo": lo, "hi": hi, "tz": tz_name, "now": now, "sla": sla,
            "fcr": timedelta(days=fcr_days),
            # Days and weeks: bucket i of width_bucket is periods[i - 1].
            "bounds": [_midnight(first, tz) for _, _, first in periods] + [hi]}
    for i, (ch, opening) in enumerate(zip(bh_ch, bh_open)):
        args[f"bh_ch_{i}"], args[f"bh_{i}"] = ch, opening
    raw: dict[object, dict] = {}
    for rows in _run(conn, [sql(params.group_by, len(bh_ch)) for sql in queries.STATEMENTS], args, parallel):
        for row in rows:
            grp = row.pop("grp")
            key = ("\0total" if row.pop("is_total") else None if grp is None else
                   periods[grp - 1][0] if periods else str(grp))
            if key is None and params.group_by not in ("team", "agent"):
                continue    # the stream's resolution rows, which carry no channel: nothing counted there
            # A statement's halves leave each other's figures NULL: keep what each computed.
            raw.setdefault(key, {}).update({k: v for k, v in row.items() if v is not None})
    total = _figures(raw.pop("\0total", {}))
    if periods:
        known = [(key, label) for key, label, _ in periods]
    else:
        known = _dimension(conn, account_id, params.group_by)
    groups = []
    listed = set()
    for key, label in known:
        groups.append({"group": key, "label": label, **_figures(raw.get(key, {}))})
        listed.add(key)
    # Groups with figures but not listed: unassigned (None), or a channel, team or agent deleted since.
    for key in sorted((k for k in raw if k not in listed), key=lambda k: (k is not None, str(k))):
        label = "unassigned" if key is None else f"{key} (deleted)"
        groups.append({"group": key, "label": label, **_figures(raw[key])})
    return {"from": params.start.isoformat(), "to": params.end.isoformat(), "timezone": tz_name,
            "group_by": params.group_by, "fcr_days": fcr_days, "sla_seconds": sla,
            "business_hours": bool(bh_ch), "generated_at": now,
            "figures": [f.name for f in FIGURES], "groups": groups, "total": total}

"""Contact-center reports (gateway/reports): every figure on a small seeded week, computed by hand here.

The data set is one week of an account in Europe/Madrid (CET, UTC+1 in November 2025), with business hours
Monday to Friday 09:00-18:00 and Friday 7 November a holiday. Messages go in through
``messages.record_message`` with fixed times; resolutions, reopenings, hand-offs and assignments are
``thread_events`` rows written with fixed times (``thread_status.set_status`` stamps now(), which a test
cannot fix). The comments give each figure's arithmetic; times below are Madrid local times.

Threads (customer, channel) and what happens in them:

- T1 (Ana, WhatsApp), created Mon 03 09:58: in 10:00 · bot 10:00:05 · hand-off 10:00:10 · person 10:00:40 ·
  in 10:05 · person 10:06 · resolved 10:30. CSAT 3.
- T2 (Ana, SMS: the same phone, so the same contact, another channel), created Wed 05 12:00: in 12:00 ·
  person 12:02 · resolved 13:00. NPS 9. -> Ana came back by SMS 2 days after T1's resolution: T1 is not a
  first-contact resolution with a 7-day window, and is one with a 2-day window.
- T3 (Ben, WhatsApp), created Tue 28 Oct: in 10:00 · person 10:01 · resolved 11:00 (before the range);
  then in Tue 04 20:00 (reopens it) · bot 20:00:03 · person Wed 05 09:05 · resolved 09:30 · survey sent
  09:30:01 · the survey's score (in 09:40, CSAT 5) and comment (in 09:41), which reopen nothing.
- T4 (Cai, WhatsApp), created Thu 06 23:30: in 23:30 · bot 23:30:02 · resolved 23:45 (contained); Cai writes
  again on 20 November (14 days later: outside the window, but a reopening).
- T5 (Dee, WhatsApp), created Fri 07 10:00: in 10:00 · person 10:00:30 · resolved 10:10. CES 2.
- T6 (Dee's other contact, merged into Dee, SMS): in Mon 10 09:00 (after the range, 2 days 22 h 50 min after
  T5's resolution): T5 is not an FCR with 7 days, is one with 2.
- T7 (Eve, WhatsApp), created Sat 08 10:00 by a campaign message: in 11:00 · person 11:30. Open.
- T8 (Fay, SMS), created Mon 03 15:00: in 15:00 · person 15:01:30 · resolved 15:10 (NPS 6) · a person reopens
  it Tue 04 09:00 · person 09:01 · resolved 09:20 (NPS 8).
- T9 (Gus, WhatsApp), created Sun 09 23:30: in 23:30 · in Mon 10 00:30 (after the range in Madrid, though
  still 9 November in UTC). Unanswered, open.
- T10 (Hal, WhatsApp), created Mon 03 00:30 (Sunday 23:30 in UTC): in 00:30 · resolved 08:00, nothing sent
  (contained). CES 5.
"""
from __future__ import annotations

import csv
import io
import os
import secrets
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from psycopg.types.json import Jsonb

from gateway import accounts, channels, contacts, db, merges, messages, reports, thread_events
from gateway.automation import hours
from gateway.db import uuid7
from gateway.reports import schedule
from gateway.reports.params import Params

MADRID = ZoneInfo("Europe/Madrid")
FROM, TO = "2025-11-03", "2025-11-09"
SCHEDULE = {"weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            "holidays": ["2025-11-07"]}


def L(text: str) -> datetime:
    """A Madrid local time in 2025 ('11-03 10:00' or '11-03 10:00:40') as a UTC instant."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(f"2025-{text}", fmt).replace(tzinfo=MADRID).astimezone(timezone.utc)


class World:
    """Seeding helpers for one account; every row carries its account."""

    def __init__(self, conn, name="reports", tz="Europe/Madrid"):
        self.conn = conn
        self.account = accounts.create_account(conn, name=f"{name}-{secrets.token_hex(3)}", timezone_name=tz,
                                               actor="test")["id"]
        self.wa = channels.create_channel(conn, account_id=self.account, kind="whatsapp", name="WhatsApp",
                                          external_id=f"1090{secrets.token_hex(5)}", actor="test",
                                          credentials={"app_secret": "s", "access_token": "t", "verify_token": "v"}
                                          )["id"]
        self.sms = channels.create_channel(conn, account_id=self.account, kind="twilio", name="SMS",
                                           external_id=f"+3491{secrets.randbelow(10 ** 7):07d}", actor="test",
                                           credentials={"account_sid": "AC1", "auth_token": "t"})["id"]

    def contact(self, name):
        phone = f"+3461{secrets.randbelow(10 ** 7):07d}"
        return contacts.create_contact(self.conn, account_id=self.account, name=name, view=False,
                                       identities=[("phone", phone)], actor="test")["id"]

    def thread(self, contact, channel, created):
        t = messages.thread_for(self.conn, account_id=self.account, contact_id=contact, channel_id=channel)["id"]
        self.conn.execute("UPDATE threads SET created_at = %s WHERE account_id = %s AND id = %s",
                          (L(created), self.account, t))
        self.contact_of = getattr(self, "contact_of", {})
        self.contact_of[t] = (contact, channel)
        return t

    def msg(self, thread, direction, at, *, automated=False, purpose=None, idem=None):
        contact, channel = self.contact_of[thread]
        row = messages.record_message(self.conn, account_id=self.account, contact_id=contact, channel_id=channel,
                                      direction=direction, body="hello", occurred_at=L(at), thread_id=thread,
                                      purpose=purpose, idempotency_key=idem)
        if automated:
            self.conn.execute("UPDATE messages SET automated = true WHERE account_id = %s AND id = %s",
                              (self.account, row["id"]))
        return row["id"]

    def inbound(self, thread, at):
        return self.msg(thread, "inbound", at)

    def person(self, thread, at):
        return self.msg(thread, "outbound", at)

    def bot(self, thread, at):
        return self.msg(thread, "outbound", at, automated=True)

    def event(self, thread, kind, at, actor="api_key:test", **detail):
        thread_events.record(self.conn, account_id=self.account, thread_id=thread, kind=kind, actor=actor,
                             detail=detail, at=L(at))

    def resolve(self, thread, at):
        self.event(thread, "status", at, **{"from": "open", "to": "resolved"})
        self.conn.execute("UPDATE threads SET status = 'resolved', resolved_at = %s, "
                          "resolution_seq = resolution_seq + 1 WHERE account_id = %s AND id = %s",
                          (L(at), self.account, thread))

    def reopen(self, thread, at, actor="api_key:test"):
        self.event(thread, "status", at, actor=actor, **{"from": "resolved", "to": "open"})

    def status(self, thread, status):
        self.conn.execute("UPDATE threads SET status = %s WHERE account_id = %s AND id = %s",
                          (status, self.account, thread))

    def assign(self, thread, at, team=None, agent=None):
        self.event(thread, "assigned", at, actor="routing", team_id=team and str(team),
                   agent_id=agent and str(agent), reason="rule")
        self.conn.execute("UPDATE threads SET team_id = %s, assignee_id = %s WHERE account_id = %s AND id = %s",
                          (team, agent, self.account, thread))

    def survey(self, thread, kind, score, resolved_at, answered_at, *, message_id=None, comment_at=None):
        contact, channel = self.contact_of[thread]
        request = uuid7()
        seq = self.conn.execute("SELECT coalesce(max(resolution_seq), 0) + 1 AS n FROM survey_requests "
                                "WHERE account_id = %s AND thread_id = %s", (self.account, thread)).fetchone()["n"]
        self.conn.execute(
            "INSERT INTO survey_requests (account_id, id, thread_id, resolution_seq, contact_id, channel_id, kind, "
            "state, sent_at, answered_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'answered', %s, %s, %s)",
            (self.account, request, thread, seq, contact, channel, kind, L(resolved_at), L(answered_at),
             L(resolved_at)))
        self.conn.execute(
            "INSERT INTO survey_responses (account_id, id, request_id, thread_id, contact_id, channel_id, kind, score, "
            "message_id, answered_at, commented_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.account, uuid7(), request, thread, contact, channel, kind, score, message_id, L(answered_at),
             comment_at and L(comment_at)))

    def business_hours(self, schedule_):
        self.conn.execute(
            "INSERT INTO automations (account_id, id, name, priority, kind, definition) "
            "VALUES (%s, %s, 'opening hours', 10, 'business_hours', %s)",
            (self.account, uuid7(), Jsonb({"schedule": schedule_, "actions": [{"type": "reply", "text": "closed"}]})))

    def team(self, name):
        team = uuid7()
        self.conn.execute("INSERT INTO teams (account_id, id, name) VALUES (%s, %s, %s)", (self.account, team, name))
        return team

    def agent(self, external_id, name):
        agent = uuid7()
        self.conn.execute("INSERT INTO agents (account_id, id, external_id, name) VALUES (%s, %s, %s, %s)",
                          (self.account, agent, external_id, name))
        return agent

    def report(self, group_by="day", start=FROM, end=TO, now=None, **kw):
        return reports.summary(self.conn, account_id=self.account, now=now,
                               params=Params(date.fromisoformat(start), date.fromisoformat(end), group_by, **kw))


def _has_teams() -> bool:
    return os.path.exists(os.path.join(os.path.dirname(reports.__file__), "..", "migrations",
                                       "0018_agents_teams.sql"))


@pytest.fixture(scope="module")
def week():
    """The seeded week (committed: the API and the CLI read it from other connections), and a second account
    with its own rows on the same days."""
    with db.connection() as conn:
        w = World(conn)
        teams = _has_teams()
        if teams:
            w.support, w.sales = w.team("Support"), w.team("Sales")
            w.a1, w.a2 = w.agent("crm-ana", "Ana Agent"), w.agent("crm-bob", "Bob Agent")
        w.business_hours(SCHEDULE)
        ana, ben, cai, dee, dee2, eve, fay, gus, hal = (w.contact(n) for n in (
            "Ana", "Ben", "Cai", "Dee", "Dee SMS", "Eve", "Fay", "Gus", "Hal"))
        merges.merge(conn, account_id=w.account, survivor_id=dee, merged_id=dee2, actor="test")

        w.t1 = t1 = w.thread(ana, w.wa, "11-03 09:58")
        w.inbound(t1, "11-03 10:00")
        w.bot(t1, "11-03 10:00:05")
        w.event(t1, "handler", "11-03 10:00:10", actor="automation", to="human", reason="rule")
        if teams:
            w.assign(t1, "11-03 10:00:10", w.support, w.a1)
        w.person(t1, "11-03 10:00:40")
        w.inbound(t1, "11-03 10:05")
        w.person(t1, "11-03 10:06")
        w.resolve(t1, "11-03 10:30")
        w.survey(t1, "csat", 3, "11-03 10:30", "11-03 10:45")

        t2 = w.thread(ana, w.sms, "11-05 12:00")
        w.inbound(t2, "11-05 12:00")
        if teams:
            w.assign(t2, "11-05 12:00:30", w.support, w.a2)
        w.person(t2, "11-05 12:02")
        w.resolve(t2, "11-05 13:00")
        w.survey(t2, "nps", 9, "11-05 13:00", "11-05 13:10")

        t3 = w.thread(ben, w.wa, "10-28 09:59")
        w.inbound(t3, "10-28 10:00")
        if teams:
            w.assign(t3, "10-28 10:00:30", w.sales, w.a2)
        w.person(t3, "10-28 10:01")
        w.resolve(t3, "10-28 11:00")
        w.reopen(t3, "11-04 20:00", actor="customer")
        w.inbound(t3, "11-04 20:00")
        w.bot(t3, "11-04 20:00:03")
        if teams:
            w.assign(t3, "11-05 08:00", w.support, w.a1)
        w.person(t3, "11-05 09:05")
        w.resolve(t3, "11-05 09:30")
        w.msg(t3, "outbound", "11-05 09:30:01", purpose="surveys", idem="survey:r1")
        w.reopen(t3, "11-05 09:40", actor="customer")          # what recording the survey's answer leaves
        score = w.inbound(t3, "11-05 09:40")
        w.msg(t3, "outbound", "11-05 09:40:01", purpose="surveys", idem="survey-follow-up:r1")
        w.inbound(t3, "11-05 09:41")
        w.survey(t3, "csat", 5, "11-05 09:30", "11-05 09:40", message_id=score, comment_at="11-05 09:41")
        w.status(t3, "resolved")                                # the survey keeps it resolved

        t4 = w.thread(cai, w.wa, "11-06 23:30")
        w.inbound(t4, "11-06 23:30")
        w.bot(t4, "11-06 23:30:02")
        w.resolve(t4, "11-06 23:45")
        w.reopen(t4, "11-20 10:00", actor="customer")
        w.inbound(t4, "11-20 10:00")
        w.status(t4, "open")
        if teams:
            w.assign(t4, "11-20 10:00:30", w.sales, w.a2)       # after its resolution: not its holder then

        t5 = w.thread(dee, w.wa, "11-07 10:00")
        w.inbound(t5, "11-07 10:00")
        w.person(t5, "11-07 10:00:30")
        w.resolve(t5, "11-07 10:10")
        w.survey(t5, "ces", 2, "11-07 10:10", "11-07 10:20")

        t6 = w.thread(dee2, w.sms, "11-10 09:00")
        w.inbound(t6, "11-10 09:00")

        t7 = w.thread(eve, w.wa, "11-08 10:00")
        w.msg(t7, "outbound", "11-08 10:00", purpose="marketing", idem="campaign:c1:eve")
        w.inbound(t7, "11-08 11:00")
        if teams:
            w.assign(t7, "11-08 11:00:10", w.sales, None)
        w.person(t7, "11-08 11:30")
        w.status(t7, "open")

        t8 = w.thread(fay, w.sms, "11-03 15:00")
        w.inbound(t8, "11-03 15:00")
        if teams:
            w.assign(t8, "11-03 15:00:30", w.support, w.a1)
        w.person(t8, "11-03 15:01:30")
        w.resolve(t8, "11-03 15:10")
        w.survey(t8, "nps", 6, "11-03 15:10", "11-03 15:20")
        w.reopen(t8, "11-04 09:00", actor="agent:crm-bob")
        if teams:
            w.assign(t8, "11-04 09:10", w.sales, w.a2)
        w.person(t8, "11-04 09:01")
        w.resolve(t8, "11-04 09:20")
        w.survey(t8, "nps", 8, "11-04 09:20", "11-04 09:30")

        t9 = w.thread(gus, w.wa, "11-09 23:30")
        w.inbound(t9, "11-09 23:30")
        w.inbound(t9, "11-10 00:30")
        w.status(t9, "open")

        t10 = w.thread(hal, w.wa, "11-03 00:30")
        w.inbound(t10, "11-03 00:30")
        w.resolve(t10, "11-03 08:00")
        w.survey(t10, "ces", 5, "11-03 08:00", "11-03 08:10")
        for t in (t1, t2, t5, t8, t10):
            w.status(t, "resolved")

        # Another account, the same days: a thread with an answer and a resolution, no business hours.
        other = World(conn, name="other")
        ox = other.thread(other.contact("Olga"), other.wa, "11-04 10:00")
        other.inbound(ox, "11-04 10:00")
        other.person(ox, "11-04 10:00:20")
        other.resolve(ox, "11-04 10:30")
        other.survey(ox, "csat", 1, "11-04 10:30", "11-04 10:35")
        w.other = other
        _, w.key = accounts.create_api_key(conn, account_id=w.account, name="reports", scopes=["messages:read"],
                                           actor="test")
        _, w.other_key = accounts.create_api_key(conn, account_id=other.account, name="reports",
                                                 scopes=["messages:read"], actor="test")
        _, w.no_scope_key = accounts.create_api_key(conn, account_id=w.account, name="send only",
                                                    scopes=["messages:send"], actor="test")
        conn.commit()
    with db.connection() as conn:
        w.conn = w.other.conn = conn
        yield w


def _day(report, day):
    return next(g for g in report["groups"] if g["group"] == day)


def test_totals_of_the_week(week):
    r = week.report()
    assert (r["timezone"], r["group_by"], r["fcr_days"], r["sla_seconds"], r["business_hours"]) == (
        "Europe/Madrid", "day", 7, 60, True)
    t = r["total"]
    # Inbound in the range (Madrid days 3..9): T1 2, T2 1, T3 3 (20:00, the survey's score and comment),
    # T4 1, T5 1, T7 1, T8 1, T9 1 (23:30 on the 9th; its 00:30 on the 10th is out), T10 1 (00:30 on the
    # 3rd, still the 2nd in UTC) = 12. Not: T3's 28 Oct, T4's 20 Nov, T6's 10 Nov.
    assert t["inbound_messages"] == 12
    # Conversations whose first customer message is in the range: T1, T2, T3 (reopened on the 4th; the survey
    # answers after its resolution start nothing), T4, T5, T7, T8 (its second conversation has no customer
    # message), T9, T10 = 9.
    assert t["conversations"] == 9
    # A person's first reply: T1 40 s, T2 120, T3 13 h 05 min = 47,100, T5 30, T7 1,800, T8 90 (T4, T9 and
    # T10 none) -> sorted 30, 40, 90, 120, 1800, 47100: median = (90 + 120) / 2 = 105;
    # p90 at rank 0.9 x 5 = 4.5 -> 1800 + 0.5 x (47100 - 1800) = 24,450.
    assert (t["first_response_median_s"], t["first_response_p90_s"]) == (105.0, 24450.0)
    # Any reply: T1 5 (bot), T2 120, T3 3 (bot), T4 2 (bot), T5 30, T7 1,800 (the campaign message came before
    # the customer's), T8 90 -> 2, 3, 5, 30, 90, 120, 1800: median 30; p90 at 5.4 -> 120 + 0.4 x 1680 = 792.
    assert (t["first_response_any_median_s"], t["first_response_any_p90_s"]) == (30.0, 792.0)
    # Service level (60 s): counted = the 6 a person answered + T9, still waiting past 60 s = 7 (T4 and T10
    # were resolved with no person's answer: not counted); within 60 s: T1 and T5 -> 2 / 7.
    assert t["service_level"] == round(2 / 7, 4)
    # Resolved in the range: T10 (27,000 s from its creation), T1 (1,920), T8 first (600), T8 second (from the
    # person's reopening at 09:00 to 09:20: 1,200), T3 (from the customer's 20:00 to 09:30: 48,600), T2 (3,600),
    # T4 (900), T5 (600) = 8 -> sorted 600, 600, 900, 1200, 1920, 3600, 27000, 48600: median (1200 + 1920) / 2
    # = 1,560; p90 at 6.3 -> 27000 + 0.3 x 21600 = 33,480.
    assert (t["resolved"], t["resolution_median_s"], t["resolution_p90_s"]) == (8, 1560.0, 33480.0)
    # FCR (7 days): not T1 (Ana wrote by SMS on the 5th), not T8's first (a person reopened it the next day),
    # not T5 (Dee's merged SMS contact wrote on the 10th); T10, T8 second, T3 (only survey answers after it),
    # T2 and T4 (Cai came back 14 days later) are -> 5 / 8.
    assert (t["fcr_rate"], t["fcr_pending"]) == (0.625, 0)
    # Reopened afterwards: T8's first and T4 (open again since the 20th) -> 2 / 8. T3's survey answer is not.
    assert t["reopen_rate"] == 0.25
    # Contained (no hand-off, no person's message): T10 and T4 -> 2 / 8.
    assert t["containment_rate"] == 0.25
    # CSAT 3 and 5 -> average 4.0, 4-5 share 1 / 2. NPS 9, 6, 8 -> (1 promoter - 1 detractor) / 3 = 0.
    # CES 2 and 5 -> 3.5. The other account's CSAT 1 is not here.
    assert (t["csat_responses"], t["csat_average"], t["csat_satisfied_share"]) == (2, 4.0, 0.5)
    assert (t["nps_responses"], t["nps"]) == (3, 0.0)
    assert (t["ces_responses"], t["ces_average"]) == (2, 3.5)
    # A person's messages in the range: T1 10:00:40 and 10:06, T8 15:01:30 (Mon), T8 09:01 (Tue), T3 09:05 and
    # T2 12:02 (Wed), T5 10:00:30 (Fri 7, a holiday: closed), T7 11:30 (Sat: closed) = 8 (bot, survey and
    # campaign messages are not) -> 2 / 8 outside business hours.
    assert t["out_of_hours_reply_share"] == 0.25
    # Inbound outside business hours: T10 00:30, T3 Tue 20:00, T4 Thu 23:30, T5 Fri (holiday), T7 Sat,
    # T9 Sun -> 6 / 12.
    assert t["out_of_hours_inbound_share"] == 0.5


def test_by_day_in_the_account_time_zone(week):
    r = week.report()
    assert [g["group"] for g in r["groups"]] == [f"2025-11-0{d}" for d in range(3, 10)]
    mon = _day(r, "2025-11-03")
    # Monday: inbound T10 00:30 (the 2nd in UTC), T1 10:00 and 10:05, T8 15:00 = 4; conversations T1, T8, T10.
    assert (mon["inbound_messages"], mon["conversations"]) == (4, 3)
    # A person's first reply: T1 40, T8 90 -> median 65, p90 40 + 0.9 x 50 = 85; any: T1 5, T8 90 -> median
    # 47.5, p90 5 + 0.9 x 85 = 81.5; service level: T1 within, T8 not (T10 not counted) -> 1 / 2.
    assert (mon["first_response_median_s"], mon["first_response_p90_s"]) == (65.0, 85.0)
    assert (mon["first_response_any_median_s"], mon["first_response_any_p90_s"]) == (47.5, 81.5)
    assert mon["service_level"] == 0.5
    # Resolved Monday: T10 27,000, T1 1,920, T8 600 -> median 1,920; p90 at 1.8 -> 1920 + 0.8 x 25080 = 21,984.
    # FCR: T10 only -> 1/3; reopened: T8 -> 1/3; contained: T10 -> 1/3.
    assert (mon["resolved"], mon["resolution_median_s"], mon["resolution_p90_s"]) == (3, 1920.0, 21984.0)
    assert (mon["fcr_rate"], mon["reopen_rate"], mon["containment_rate"]) == (0.3333, 0.3333, 0.3333)
    # Surveys answered Monday: CSAT 3 (T1; share of 4-5: 0), NPS 6 (T8: a detractor, -100), CES 5 (T10).
    assert (mon["csat_average"], mon["csat_satisfied_share"], mon["nps"], mon["ces_average"]) == (3.0, 0.0, -100.0, 5.0)
    # Out of hours: inbound T10 00:30 of 4 -> 0.25; a person's replies 10:00:40, 10:06, 15:01:30 all open -> 0.
    assert (mon["out_of_hours_inbound_share"], mon["out_of_hours_reply_share"]) == (0.25, 0.0)

    tue = _day(r, "2025-11-04")
    # T3's 20:00 (closed); its person's reply came the next day after 47,100 s: a miss. T8's second conversation
    # resolved (1,200 s; FCR; not contained: a person wrote at 09:01, open). NPS 8: passive -> 0.
    assert (tue["inbound_messages"], tue["conversations"], tue["first_response_median_s"]) == (1, 1, 47100.0)
    assert (tue["first_response_any_median_s"], tue["service_level"]) == (3.0, 0.0)
    assert (tue["resolved"], tue["resolution_median_s"], tue["fcr_rate"], tue["containment_rate"]) == (
        1, 1200.0, 1.0, 0.0)
    assert (tue["nps"], tue["out_of_hours_inbound_share"], tue["out_of_hours_reply_share"]) == (0.0, 1.0, 0.0)

    wed = _day(r, "2025-11-05")
    # Inbound: T2 12:00, T3's survey score and comment = 3 (all open hours); one conversation (T2, 120 s).
    # Resolved: T3 48,600 and T2 3,600 -> median 26,100, p90 3600 + 0.9 x 45000 = 44,100; both FCR.
    # CSAT 5 (share 1.0); NPS 9 (+100). Replies 12:02 and 09:05, open -> 0.
    assert (wed["inbound_messages"], wed["conversations"], wed["first_response_median_s"]) == (3, 1, 120.0)
    assert (wed["resolved"], wed["resolution_median_s"], wed["resolution_p90_s"], wed["fcr_rate"]) == (
        2, 26100.0, 44100.0, 1.0)
    assert (wed["reopen_rate"], wed["csat_average"], wed["csat_satisfied_share"], wed["nps"]) == (0.0, 5.0, 1.0, 100.0)
    assert (wed["out_of_hours_inbound_share"], wed["out_of_hours_reply_share"]) == (0.0, 0.0)

    thu = _day(r, "2025-11-06")
    # T4: no person, a bot after 2 s, resolved in 900 s, contained, reopened (on the 20th), FCR (14 days later).
    assert (thu["conversations"], thu["first_response_median_s"], thu["first_response_any_median_s"]) == (1, None, 2.0)
    assert (thu["service_level"], thu["resolved"], thu["resolution_median_s"]) == (None, 1, 900.0)
    assert (thu["fcr_rate"], thu["reopen_rate"], thu["containment_rate"]) == (1.0, 1.0, 1.0)
    assert (thu["out_of_hours_inbound_share"], thu["out_of_hours_reply_share"]) == (1.0, None)

    fri = _day(r, "2025-11-07")
    # T5 on a holiday: 30 s (within 60), resolved in 600 s, not an FCR (Dee's SMS on the 10th), CES 2.
    assert (fri["first_response_median_s"], fri["service_level"], fri["resolution_median_s"], fri["fcr_rate"]) == (
        30.0, 1.0, 600.0, 0.0)
    assert (fri["ces_average"], fri["out_of_hours_inbound_share"], fri["out_of_hours_reply_share"]) == (2.0, 1.0, 1.0)

    sat, sun = _day(r, "2025-11-08"), _day(r, "2025-11-09")
    # Saturday: T7 answered by a person after 1,800 s (the campaign message before it is no reply), closed.
    assert (sat["conversations"], sat["first_response_median_s"], sat["first_response_any_median_s"]) == (
        1, 1800.0, 1800.0)
    assert (sat["service_level"], sat["resolved"], sat["fcr_rate"], sat["out_of_hours_reply_share"]) == (
        0.0, 0, None, 1.0)
    # Sunday: T9's 23:30 (its 00:30 is Monday the 10th in Madrid), unanswered and waiting: counted as a miss.
    assert (sun["inbound_messages"], sun["conversations"], sun["first_response_median_s"]) == (1, 1, None)
    assert (sun["service_level"], sun["out_of_hours_inbound_share"], sun["out_of_hours_reply_share"]) == (
        0.0, 1.0, None)
    # The days add up to the total wherever a figure is a count.
    for name in ("inbound_messages", "conversations", "resolved", "csat_responses", "nps_responses",
                 "ces_responses"):
        assert sum(g[name] for g in r["groups"]) == r["total"][name], name


def test_the_same_week_in_utc_moves_the_day_boundaries(week):
    week.conn.execute("UPDATE accounts SET timezone = 'UTC' WHERE id = %s", (week.account,))
    try:
        t = week.report()["total"]
    finally:
        week.conn.execute("UPDATE accounts SET timezone = 'Europe/Madrid' WHERE id = %s", (week.account,))
        week.conn.commit()
    # In UTC, T10's 00:30 Madrid (2 Nov 23:30 UTC) is out and T9's 00:30 on the 10th (9 Nov 23:30 UTC) is in:
    # still 12 inbound messages, but T10's conversation is no longer the range's (8 conversations).
    assert (t["inbound_messages"], t["conversations"]) == (12, 8)


def test_cross_channel_fcr_window(week):
    # With a 2-day window: T1's customer came back by SMS 2 days 1.5 h after it (outside) -> FCR; T5's merged
    # SMS contact 2 days 22 h 50 min after (outside) -> FCR; T8's first was reopened by a person the next day
    # (inside) -> not. 7 / 8.
    assert week.report(fcr_days=2)["total"]["fcr_rate"] == 0.875
    # The account's own setting is the default when the query gives none.
    week.conn.execute("UPDATE accounts SET report_fcr_days = 2 WHERE id = %s", (week.account,))
    try:
        r = week.report()
        assert (r["fcr_days"], r["total"]["fcr_rate"]) == (2, 0.875)
    finally:
        week.conn.execute("UPDATE accounts SET report_fcr_days = NULL WHERE id = %s", (week.account,))
        week.conn.commit()


def test_fcr_pending_until_the_window_ends(week):
    # Seen from 12 Nov 00:00: windows (7 days) are over for resolutions up to 5 Nov 00:00: T10, T1, T8 first,
    # T8 second. T3 (5th 09:30), T2 (5th 13:00) and T4 (6th) have not come back and wait: pending 3. T5's
    # customer came back on the 10th: counted (not an FCR) though its window is open. FCR = (T10, T8 second)
    # / (4 over + T5) = 2 / 5.
    t = week.report(now=L("11-12 00:00"))["total"]
    assert (t["fcr_rate"], t["fcr_pending"]) == (0.4, 3)


def test_service_level_target(week):
    # A 120 s target: T1 40, T2 120, T5 30, T8 90 within; T3 and T7 not; T9 waiting -> 4 / 7.
    assert week.report(sla_seconds=120)["total"]["service_level"] == round(4 / 7, 4)


def test_by_week(week):
    r = week.report("week", start="2025-11-01")
    # 1-2 Nov fall in ISO week 44 (Monday 27 Oct): nothing happened then. Week 45 is the whole seeded week.
    assert [(g["group"], g["label"]) for g in r["groups"]] == [("2025-10-27", "2025-W44"), ("2025-11-03", "2025-W45")]
    assert r["groups"][0]["inbound_messages"] == 0 and r["groups"][0]["fcr_rate"] is None
    w45 = {k: v for k, v in r["groups"][1].items() if k not in ("group", "label")}
    assert w45 == r["total"] == week.report()["total"]


def test_by_channel(week):
    r = week.report("channel")
    assert [g["label"] for g in r["groups"]] == ["SMS (twilio)", "WhatsApp (whatsapp)"]
    sms = next(g for g in r["groups"] if g["group"] == str(week.sms))
    # SMS: inbound T2 12:00 and T8 15:00; conversations T2 (120 s) and T8 (90 s) -> median 105, p90 90 + 0.9 x 30
    # = 117; both over 60 s -> 0. Resolved T2 3,600, T8 600 and 1,200 -> median 1,200, p90 at 1.8 -> 1200 + 0.8
    # x 2400 = 3,120; FCR T2 and T8 second -> 2/3; reopened T8 first -> 1/3; none contained. NPS 9, 6, 8 -> 0.
    assert (sms["inbound_messages"], sms["conversations"], sms["first_response_median_s"],
            sms["first_response_p90_s"], sms["service_level"]) == (2, 2, 105.0, 117.0, 0.0)
    assert (sms["resolved"], sms["resolution_median_s"], sms["resolution_p90_s"], sms["fcr_rate"],
            sms["reopen_rate"], sms["containment_rate"]) == (3, 1200.0, 3120.0, 0.6667, 0.3333, 0.0)
    assert (sms["nps_responses"], sms["nps"], sms["csat_responses"]) == (3, 0.0, 0)
    wa = next(g for g in r["groups"] if g["group"] == str(week.wa))
    # WhatsApp: the rest. A person's first reply: T1 40, T3 47,100, T5 30, T7 1,800 -> median (40 + 1800) / 2 =
    # 920; p90 at 2.7 -> 1800 + 0.7 x 45300 = 33,510.
    assert (wa["inbound_messages"], wa["conversations"], wa["resolved"]) == (10, 7, 5)
    assert (wa["first_response_median_s"], wa["first_response_p90_s"]) == (920.0, 33510.0)


@pytest.mark.skipif(not _has_teams(), reason="the agents-and-teams migration (0018) is not in the tree yet")
def test_by_team_and_agent_at_resolution(week):
    r = week.report("team")
    assert [g["label"] for g in r["groups"]] == ["Sales", "Support", "unassigned"]
    support, sales, none = (next(g for g in r["groups"] if g["group"] == k)
                            for k in (str(week.support), str(week.sales), None))
    # Who held each conversation when it was resolved (or now): T1 Support/Ana, T2 Support/Bob, T3 Support/Ana
    # (moved from Sales on the 5th before its resolution), T8 first Support/Ana, T8 second Sales/Bob (moved on
    # the 4th), T7 Sales (no agent, open now), T4 nobody (assigned only on the 20th), T5, T9, T10 nobody.
    # Inbound: Support = T1 2 + T8 1 + T3 3 (its 20:00, and the survey answers after its resolution go to its
    # current holder, Support/Ana) + T2 1 = 7; Sales = T7 1; nobody = T10, T4, T5, T9 = 4.
    assert [g["inbound_messages"] for g in (support, sales, none)] == [7, 1, 4]
    assert [g["conversations"] for g in (support, sales, none)] == [4, 1, 4]
    # Support's first replies 40, 120, 47100, 90 -> median 105, p90 at 2.7 -> 120 + 0.7 x 46980 = 33,006; SL
    # 1 / 4. Resolved: T1 1,920, T8 600, T3 48,600, T2 3,600 -> median 2,760; p90 3600 + 0.7 x 45000 = 35,100;
    # FCR T3, T2 -> 0.5; reopened T8 -> 0.25. CSAT 3 and 5; NPS 9 and 6 -> 0.
    assert (support["first_response_median_s"], support["first_response_p90_s"], support["service_level"]) == (
        105.0, 33006.0, 0.25)
    assert (support["resolved"], support["resolution_median_s"], support["resolution_p90_s"], support["fcr_rate"],
            support["reopen_rate"]) == (4, 2760.0, 35100.0, 0.5, 0.25)
    assert (support["csat_average"], support["nps_responses"], support["nps"]) == (4.0, 2, 0.0)
    # Sales: T7 (1,800 s), T8 second resolved (1,200 s, NPS 8). Nobody: T10, T4, T5 resolved; CES 5 and 2.
    assert (sales["first_response_median_s"], sales["resolved"], sales["resolution_median_s"], sales["nps"]) == (
        1800.0, 1, 1200.0, 0.0)
    assert (none["resolved"], none["containment_rate"], none["ces_average"]) == (3, 0.6667, 3.5)

    r = week.report("agent")
    assert [g["label"] for g in r["groups"]] == ["Ana Agent", "Bob Agent", "unassigned"]
    ana, bob, none = (next(g for g in r["groups"] if g["group"] == k) for k in (str(week.a1), str(week.a2), None))
    # Ana: T1, T3, T8 first; Bob: T2, and T8 second; nobody: T4, T5, T9, T10 and T7 (a team, no agent).
    assert [g["inbound_messages"] for g in (ana, bob, none)] == [6, 1, 5]
    assert [g["conversations"] for g in (ana, bob, none)] == [3, 1, 5]
    assert [g["resolved"] for g in (ana, bob, none)] == [3, 2, 3]
    # Bob's NPS: 9 (T2) and 8 (T8 second) -> (1 - 0) / 2 = +50.
    assert (bob["nps_responses"], bob["nps"], ana["csat_responses"]) == (2, 50.0, 2)


def test_tenant_wall(week):
    t = week.other.report()["total"]
    # The other account's own thread only: 1 inbound, a reply after 20 s, resolved in 30 min, CSAT 1; no
    # business hours there, so no out-of-hours figure.
    assert (t["inbound_messages"], t["conversations"], t["first_response_median_s"], t["resolved"]) == (
        1, 1, 20.0, 1)
    assert (t["resolution_median_s"], t["csat_average"], t["out_of_hours_reply_share"]) == (1800.0, 1.0, None)
    assert week.other.report()["business_hours"] is False


def test_business_hours_intervals_match_is_open():
    lo, hi = L("11-01 00:00"), L("11-11 00:00")
    spans = schedule.open_intervals(SCHEDULE, lo, hi, default_tz="Europe/Madrid")
    at = lo
    while at < hi:
        inside = any(a <= at < b for a, b in spans)
        assert inside == hours.is_open(SCHEDULE, at, default_tz="Europe/Madrid"), at
        at += timedelta(minutes=30)


# --- the API and the CLI -----------------------------------------------------------------------------------

def _get(client, key, query):
    return client.get(f"/v1/reports/summary?{query}", headers={"Authorization": f"Bearer {key}"})


def test_api_json_and_csv(week, client):
    r = _get(client, week.key, f"from={FROM}&to={TO}&group_by=day")
    assert r.status_code == 200, r.json
    assert r.json["total"]["inbound_messages"] == 12 and r.json["total"]["service_level"] == round(2 / 7, 4)
    assert len(r.json["groups"]) == 7 and r.json["figures"][0] == "inbound_messages"
    r = _get(client, week.key, f"from={FROM}&to={TO}&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert 'filename="report-day-2025-11-03-2025-11-09.csv"' in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["group"] for row in rows] == [f"2025-11-0{d}" for d in range(3, 10)] + ["total"]
    total = rows[-1]
    assert (total["inbound_messages"], total["first_response_median_s"], total["fcr_rate"], total["nps"]) == (
        "12", "105.0", "0.625", "0.0")
    assert rows[5]["resolved"] == "0" and rows[5]["fcr_rate"] == ""      # Saturday: nothing resolved
    # The other account sees its own figures only.
    r = _get(client, week.other_key, f"from={FROM}&to={TO}")
    assert r.json["total"]["inbound_messages"] == 1


def test_api_bad_parameters_name_the_fix(week, client):
    r = _get(client, week.key, "to=2025-11-09&from=3/11/2025")
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert r.json["errors"] == [{"pointer": "?from", "detail": "'3/11/2025' is not a date; write YYYY-MM-DD "
                                                               "(e.g. 2026-11-01)"}]
    r = _get(client, week.key, "from=2025-11-09&to=2025-11-03&group_by=month&fcr_days=0")
    assert r.status_code == 422
    pointers = {e["pointer"]: e["detail"] for e in r.json["errors"]}
    assert set(pointers) == {"?to", "?group_by", "?fcr_days"}
    assert "day, week, channel, team, agent" in pointers["?group_by"]
    assert "from 1 to 90 days" in pointers["?fcr_days"]
    r = _get(client, week.key, "from=2024-01-01&to=2025-11-09")
    assert r.status_code == 422 and "split it" in r.json["errors"][0]["detail"]
    r = _get(client, week.key, f"from={FROM}&to={TO}&groupby=day")
    assert r.status_code == 400 and r.json["errors"][0]["pointer"] == "?groupby"
    assert _get(client, week.no_scope_key, f"from={FROM}&to={TO}").status_code == 403


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gateway.cli", "reports", "summary", *args], env=os.environ,
                          capture_output=True, text=True, timeout=120)


def test_cli_table_and_csv(week):
    out = _cli("--account", str(week.account), "--from", FROM, "--to", TO)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("2025-11-03 to 2025-11-09 (Europe/Madrid), by day; FCR window 7 days")
    heads, total = lines[1].split(), lines[-1].split()
    assert heads[:3] == ["day", "inbound", "convs"] and total[0] == "total"
    # Aligned: every line of the table is as wide as the header line, or shorter only by trailing blanks.
    assert len({len(line) for line in lines[1:] if not line.startswith("-")}) == 1
    # total: 12 inbound, 9 conversations, FRT 105 s = 1m45s / 24,450 s = 6h48m (to the minute), SL 28.6 %,
    # FCR 62.5 %, NPS +0.0
    assert total[1:5] == ["12", "9", "1m45s", "6h48m"]
    assert "28.6%" in total and "62.5%" in total and "+0.0" in total
    out = _cli("--account", str(week.account), "--from", FROM, "--to", TO, "--group-by", "channel", "--csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["label"] for r in rows] == ["SMS (twilio)", "WhatsApp (whatsapp)", "total"]
    out = _cli("--account", str(week.account), "--from", TO, "--to", FROM)
    assert out.returncode == 2 and "--to: is before from" in out.stderr


def test_account_report_settings(tenant):
    r = tenant.client.patch("/v1/account", json={"report_fcr_days": 3, "report_sla_seconds": 120},
                            headers=tenant.headers())
    assert r.status_code == 200, r.json
    assert (r.json["report_fcr_days"], r.json["report_sla_seconds"]) == (3, 120)
    r = tenant.get(f"/v1/reports/summary?from={FROM}&to={TO}")
    assert (r.json["fcr_days"], r.json["sla_seconds"]) == (3, 120)
    r = tenant.get(f"/v1/reports/summary?from={FROM}&to={TO}&fcr_days=10&sla_seconds=30")
    assert (r.json["fcr_days"], r.json["sla_seconds"]) == (10, 30)       # the query wins
    r = tenant.client.patch("/v1/account", json={"report_fcr_days": 0}, headers=tenant.headers())
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/report_fcr_days"

"""Benchmark: the inbox list, a thread's messages, a contact's timeline and a 30-day report at 1,000,000 messages.

    .venv/bin/python bench/threads.py [--quick] [--threads N] [--messages M] [--rounds R]

Embedded PostgreSQL and Valkey in a temporary folder, as the other benches. One account gets N threads (default
100,000) holding M messages (default 1,000,000) over the last 90 days, and a second account a tenth of that,
seeded with COPY (binary) as the gateway would have left them: one contact per thread (a fifth of the contacts
have a second thread on another channel), a data key per contact, every body encrypted under the contact's
key bound to its row (so the read paths decrypt for real), a status history per message (received; sent,
delivered, read), conversations cut by resolutions and reopenings (``thread_events``), bot answers and
hand-offs, teams and agents with assignment events, CSAT answers for a third of the resolutions, business
hours. One thread in a hundred is long (100 messages: five conversations); the rest hold 9 or 10 (one or two
conversations). Then ``VACUUM ANALYZE``, as autovacuum would have left the tables.

Timed through the Flask test client (the whole request in process: API-key check, the view, JSON, the audit
row of a personal-data read; no network), R rounds each after a warm-up, with a key of the first account:

- ``GET /v1/threads?limit=50``: the first page or a page deeper (a random thread's cursor) - inbox_*;
- ``GET /v1/threads/{id}/messages?limit=50`` of a random long thread (oldest first, or ``before=latest``) -
  messages_*;
- ``GET /v1/contacts/{id}/timeline?limit=50`` of a random long thread's contact - timeline_* (null when the
  route is missing);
- ``reports.summary`` (a direct call, as the API makes it: its two heavy statements at once on two pooled
  connections) for the last 30 full days by day - report_30d_s, the median of 3; on one connection, one after
  the other - report_30d_one_connection_s; by agent - report_30d_agent_s.

Each against a reference in the same run on the same data: the bare indexed SELECT of the same page through
one psycopg connection (``*_ref_p99_ms``), and for the report one bare count of the range's messages by
direction over the same index (``report_ref_s``); ``request_*_ms`` is ``GET /v1/account`` through the same
client, the cost of an authenticated request that reads nothing. Aims: pages p99 < 30 ms, report < 2 s.

The last line is one JSON object: {"inbox_p99_ms", "messages_p99_ms", "timeline_p99_ms", "report_30d_s", ...}.
``--quick`` (10,000 threads, 100,000 messages, fewer rounds) gives the same keys in under a minute.
"""
from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _embedded import embedded_gateway  # noqa: E402
DAY = 86400.0
SCHEDULE = {"weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
BODIES = ("Hola, tengo un problema con mi pedido, no ha llegado todavía y ya han pasado varios días",
          "Gracias por la respuesta, lo reviso y os digo algo", "¿Podéis decirme el estado del envío 4821?",
          "Perfecto, muchas gracias", "Buenos días, quería cambiar la dirección de entrega de mañana")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


# --- seeding -----------------------------------------------------------------------------------------------

class Seeder:
    """Generates one account's rows in Python and COPYs them in chunks of threads."""

    def __init__(self, conn, name: str, n_threads: int, n_messages: int, now: datetime, rng: random.Random):
        from gateway import accounts, channels
        self.conn, self.now, self.rng = conn, now, rng
        self.n_threads, self.n_messages = n_threads, n_messages
        self.account = accounts.create_account(conn, name=f"{name}-{secrets.token_hex(3)}",
                                               timezone_name="Europe/Madrid", actor="bench")["id"]
        creds = {"app_secret": "s", "access_token": "t", "verify_token": "v"}
        self.wa = channels.create_channel(conn, account_id=self.account, kind="whatsapp", name="WhatsApp",
                                          external_id=f"1090{secrets.token_hex(6)}", credentials=creds,
                                          actor="bench")["id"]
        self.sms = channels.create_channel(conn, account_id=self.account, kind="twilio", name="SMS",
                                           external_id=f"+3491{secrets.randbelow(10 ** 7):07d}",
                                           credentials={"account_sid": "AC1", "auth_token": "t"}, actor="bench")["id"]
        from psycopg.types.json import Jsonb

        from gateway.db import uuid7
        conn.execute("INSERT INTO automations (account_id, id, name, priority, kind, definition) VALUES "
                     "(%s, %s, 'opening hours', 10, 'business_hours', %s)",
                     (self.account, uuid7(), Jsonb({"schedule": SCHEDULE, "actions": [
                         {"type": "reply", "text": "We are closed; we answer from {next_open}."}]})))
        self.teams: list = []
        self.agents: dict = {}
        if conn.execute("SELECT to_regclass('teams') IS NOT NULL AS ok").fetchone()["ok"]:
            for t in range(5):
                team = uuid7()
                conn.execute("INSERT INTO teams (account_id, id, name) VALUES (%s, %s, %s)",
                             (self.account, team, f"Team {t + 1}"))
                self.teams.append(team)
                self.agents[team] = []
                for a in range(10):
                    agent = uuid7()
                    conn.execute("INSERT INTO agents (account_id, id, external_id, name, availability) "
                                 "VALUES (%s, %s, %s, %s, 'available')",
                                 (self.account, agent, f"crm-{t}-{a}", f"Agent {t + 1}.{a + 1}"))
                    self.agents[team].append(agent)
        conn.commit()
        # One thread in a hundred is long; the others share the rest of the messages.
        self.long = set(range(0, n_threads, 100))
        rest = n_messages - 100 * len(self.long)
        normal = n_threads - len(self.long)
        self.base, self.extra = divmod(rest, normal)
        self.n_contacts = n_threads * 4 // 5
        self.long_threads: list = []          # (thread id, contact id) of long threads, for the timed reads
        self.written = {"threads": 0, "messages": 0, "message_events": 0, "thread_events": 0, "surveys": 0}

    def _count(self, i: int, normal_index: int) -> int:
        if i in self.long:
            return 100
        return self.base + (1 if normal_index < self.extra else 0)

    def _conversation(self, t: float, k: int) -> tuple[list, float, float | None]:
        """k messages from t: (messages [(at, direction, automated)], resolution time, hand-off time)."""
        r = self.rng
        out = [(t, "inbound", False)]
        handoff = None
        if r.random() < 0.5:
            t += r.uniform(1, 4)
            out.append((t, "outbound", True))
        roll = r.random()
        frt = r.uniform(10, 120) if roll < 0.7 else r.uniform(120, 1800) if roll < 0.9 else r.uniform(1800, 8 * 3600)
        t = out[0][0] + frt if out[-1][1] == "inbound" else max(out[-1][0] + 1, out[0][0] + frt)
        if out[-1][2]:
            handoff = t - 1
        person = True
        while len(out) < k:
            if person:
                out.append((t, "outbound", False))
                t += r.uniform(30, 1800)
            else:
                out.append((t, "inbound", False))
                t += r.uniform(15, 600)
            person = not person
        return out, out[-1][0] + r.uniform(120, 3 * 3600), handoff

    def _thread(self, k: int) -> dict:
        r = self.rng
        parts = [20] * 5 if k == 100 else ([k - 4, 4] if k >= 8 and r.random() < 0.6 else [k])
        t = self.now.timestamp() - r.uniform(0, 90 * DAY)
        convs = []
        for n, size in enumerate(parts):
            msgs, res, handoff = self._conversation(t, size)
            convs.append({"msgs": msgs, "res": res, "handoff": handoff})
            roll = r.random()
            t = res + (r.uniform(3600, 6 * DAY) if roll < 0.4 else r.uniform(8 * DAY, 30 * DAY))
        if r.random() < 0.25:
            convs[-1]["res"] = None         # the last conversation is still open
        last = max(max(c["msgs"][-1][0], c["res"] or 0) for c in convs)
        limit = self.now.timestamp() - 60
        if last > limit:                    # nothing in the future: the whole thread moves back
            shift = last - limit + r.uniform(0, 2 * DAY)
            for c in convs:
                c["msgs"] = [(a - shift, d, au) for a, d, au in c["msgs"]]
                c["res"] = c["res"] and c["res"] - shift
                c["handoff"] = c["handoff"] and c["handoff"] - shift
        return {"convs": convs}

    def seed(self, chunk: int = 5000) -> None:
        from gateway import keystore
        from gateway.crypto import DataKey, field_aad
        from gateway.db import uuid7
        from psycopg.types.json import Jsonb
        a = self.account
        ts = lambda x: datetime.fromtimestamp(x, timezone.utc)  # noqa: E731
        normal_index = 0
        contact_ids, keys = [], []
        # Contacts first (data keys, names), all of them.
        for start in range(0, self.n_contacts, chunk):
            krows, crows = [], []
            for _ in range(start, min(self.n_contacts, start + chunk)):
                key_id, material, kid, wrapped = keystore._new_wrapped(a)
                key = DataKey(key_id, material)
                cid = uuid7()
                krows.append((a, key_id, "contact", kid, wrapped))
                crows.append((a, cid, key_id, key.encrypt(f"Customer {len(contact_ids)}",
                                                          field_aad("contacts", "name", a, cid)), "es"))
                contact_ids.append(cid)
                keys.append(key)
            self._copy("data_keys", ("account_id", "id", "purpose", "master_kid", "wrapped"),
                       ("uuid", "uuid", "text", "text", "bytea"), krows)
            self._copy("contacts", ("account_id", "id", "data_key_id", "name_enc", "language"),
                       ("uuid", "uuid", "uuid", "bytea", "text"), crows)
            self.conn.commit()
        for start in range(0, self.n_threads, chunk):
            trows, mrows, erows, everows, qrows, srows = [], [], [], [], [], []
            for i in range(start, min(self.n_threads, start + chunk)):
                k = self._count(i, normal_index)
                if i not in self.long:
                    normal_index += 1
                ci = i if i < self.n_contacts else i - self.n_contacts
                contact, key = contact_ids[ci], keys[ci]
                channel = self.wa if i < self.n_contacts else self.sms
                tid = uuid7()
                if i in self.long:
                    self.long_threads.append((tid, contact))
                th = self._thread(k)
                convs = th["convs"]
                first = convs[0]["msgs"][0][0]
                team = agent = None
                if self.teams and self.rng.random() < 0.9:
                    team = self.rng.choice(self.teams)
                    agent = self.rng.choice(self.agents[team]) if self.rng.random() < 0.9 else None
                    everows.append((a, uuid7(), tid, "assigned", "routing", Jsonb(
                        {"team_id": str(team), "agent_id": agent and str(agent), "reason": "rule"}), ts(first + 3)))
                last_in = last_out = None
                last_res = reopened = None
                n_res = 0
                handler, handed = "bot", None
                for n, c in enumerate(convs):
                    if n > 0:
                        reopened = c["msgs"][0][0]
                        everows.append((a, uuid7(), tid, "status", "customer",
                                        Jsonb({"from": "resolved", "to": "open"}), ts(reopened)))
                    for at, direction, automated in c["msgs"]:
                        mid = uuid7()
                        body = self.rng.choice(BODIES)
                        inbound = direction == "inbound"
                        status = "received" if inbound else ("delivered" if automated else "read")
                        mrows.append((a, mid, tid, contact, channel, direction, "text",
                                      key.encrypt(body, field_aad("messages", "body", a, mid)), status,
                                      0 if inbound else (3 if automated else 4), ts(at), ts(at), ts(at), automated,
                                      None if inbound else "transactional"))
                        for s, dt in ((("received", 0),) if inbound else
                                      (("sent", 0.4), ("delivered", 1.1)) + ((("read", 30),) if not automated else ())):
                            erows.append((a, uuid7(), mid, s, ts(at + dt), ts(at + dt)))
                        if inbound:
                            last_in = at
                        else:
                            last_out = at
                    if c["handoff"] is not None:
                        everows.append((a, uuid7(), tid, "handler", "automation",
                                        Jsonb({"to": "human", "reason": "rule"}), ts(c["handoff"])))
                        handler, handed = "human", c["handoff"]
                    if c["res"] is not None:
                        n_res += 1
                        last_res = c["res"]
                        agent_key = f"agent:crm-{self.rng.randrange(5)}-{self.rng.randrange(10)}"
                        everows.append((a, uuid7(), tid, "status", agent_key,
                                        Jsonb({"from": "open", "to": "resolved"}), ts(c["res"])))
                        everows.append((a, uuid7(), tid, "handler", "gateway", Jsonb({"to": "bot"}), ts(c["res"])))
                        handler, handed = "bot", None
                        if self.rng.random() < 0.33:
                            req = uuid7()
                            qrows.append((a, req, tid, n_res, contact, channel, "csat", "answered", ts(c["res"]),
                                          ts(c["res"] + 300), ts(c["res"])))
                            score = self.rng.choices((1, 2, 3, 4, 5), (5, 5, 10, 30, 50))[0]
                            srows.append((a, uuid7(), req, tid, contact, channel, "csat", score, ts(c["res"] + 300)))
                resolved = convs[-1]["res"] is not None
                last_act = max(x for x in (last_in, last_out) if x is not None)
                trows.append((a, tid, contact, channel, "resolved" if resolved else "open", ts(last_in),
                              last_out and ts(last_out),
                              ts(last_act), ts(first - 1), n_res, ts(last_res) if resolved else None,
                              reopened and ts(reopened), handler, handed and ts(handed), team, agent,
                              team and ts(first + 3),
                              1 if (not resolved and last_in == last_act) else 0))
            self._copy("threads", ("account_id", "id", "contact_id", "channel_id", "status", "last_inbound_at",
                                   "last_outbound_at", "last_activity_at", "created_at", "resolution_seq",
                                   "resolved_at", "reopened_at", "handler", "handed_off_at", "team_id",
                                   "assignee_id", "assigned_at", "unread_count"),
                       ("uuid", "uuid", "uuid", "uuid", "text", "timestamptz", "timestamptz", "timestamptz",
                        "timestamptz", "int4", "timestamptz", "timestamptz", "text", "timestamptz", "uuid", "uuid",
                        "timestamptz", "int4"), trows if self.teams else [r[:14] + r[17:] for r in trows],
                       skip=() if self.teams else ("team_id", "assignee_id", "assigned_at"))
            self._copy("messages", ("account_id", "id", "thread_id", "contact_id", "channel_id", "direction", "kind",
                                    "body_enc", "status", "status_rank", "occurred_at", "created_at", "updated_at",
                                    "automated", "purpose"),
                       ("uuid", "uuid", "uuid", "uuid", "uuid", "text", "text", "bytea", "text", "int2",
                        "timestamptz", "timestamptz", "timestamptz", "bool", "text"), mrows)
            self._copy("message_events", ("account_id", "id", "message_id", "status", "occurred_at", "created_at"),
                       ("uuid", "uuid", "uuid", "text", "timestamptz", "timestamptz"), erows)
            self._copy("thread_events", ("account_id", "id", "thread_id", "kind", "actor", "detail", "created_at"),
                       ("uuid", "uuid", "uuid", "text", "text", "jsonb", "timestamptz"), everows)
            self._copy("survey_requests", ("account_id", "id", "thread_id", "resolution_seq", "contact_id",
                                           "channel_id", "kind", "state", "sent_at", "answered_at", "created_at"),
                       ("uuid", "uuid", "uuid", "int4", "uuid", "uuid", "text", "text", "timestamptz", "timestamptz",
                        "timestamptz"), qrows)
            self._copy("survey_responses", ("account_id", "id", "request_id", "thread_id", "contact_id", "channel_id",
                                            "kind", "score", "answered_at"),
                       ("uuid", "uuid", "uuid", "uuid", "uuid", "uuid", "text", "int2", "timestamptz"), srows)
            self.conn.commit()
            for name, rows in (("threads", trows), ("messages", mrows), ("message_events", erows),
                               ("thread_events", everows), ("surveys", srows)):
                self.written[name] += len(rows)

    def _copy(self, table: str, columns: tuple, types: tuple, rows: list, skip: tuple = ()) -> None:
        if not rows:
            return
        cols = [c for c in columns if c not in skip]
        kinds = [t for c, t in zip(columns, types) if c not in skip]
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(kinds)
                for row in rows:
                    cp.write_row(row)


# --- timing ------------------------------------------------------------------------------------------------

def timed_requests(client, headers, paths: list[str], rounds: int, warmup: int = 20) -> list[float]:
    from bench._timing import timed
    for p in paths[:warmup]:
        r = client.get(p, headers=headers)
        assert r.status_code == 200, (p, r.status_code, r.get_data(as_text=True)[:300])
    def get(path):
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code)

    return [1000 * timed(get, paths[n % len(paths)]) for n in range(rounds)]


def timed_sql(sql: str, params: list[tuple], rounds: int) -> list[float]:
    from gateway import db
    out = []
    with db.connection() as conn:
        for p in params[:20]:
            conn.execute(sql, p).fetchall()
        for n in range(rounds):
            start = time.perf_counter()
            conn.execute(sql, params[n % len(params)]).fetchall()
            out.append(1000 * (time.perf_counter() - start))
        conn.rollback()
    return out


def figures(name: str, values: list[float], ref: list[float] | None) -> dict:
    out = {f"{name}_p50_ms": round(pct(values, 50), 2), f"{name}_p99_ms": round(pct(values, 99), 2)}
    if ref is not None:
        out[f"{name}_ref_p99_ms"] = round(pct(ref, 99), 2)
    log(f"{name}: p50 {out[f'{name}_p50_ms']} ms, p99 {out[f'{name}_p99_ms']} ms"
        + ("" if ref is None else f"; bare SELECT p50 {pct(ref, 50):.2f} ms, p99 {pct(ref, 99):.2f} ms"))
    return out


def bench(n_threads: int, n_messages: int, rounds: int) -> dict:
    from gateway import accounts, db, reports
    from gateway.api import paging
    from gateway.app import create_app
    from gateway.reports.params import Params

    rng = random.Random(20261124)
    now = datetime.now(timezone.utc)
    result: dict = {}
    start = time.perf_counter()
    with db.connection() as conn:
        main = Seeder(conn, "bench-main", n_threads, n_messages, now, rng)
        main.seed()
        log(f"main account: {main.written}")
        other = Seeder(conn, "bench-other", max(100, n_threads // 10), max(1000, n_messages // 10), now, rng)
        other.seed()
        log(f"other account: {other.written}")
        _, key = accounts.create_api_key(conn, account_id=main.account, name="bench",
                                         scopes=["messages:read", "contacts:read"], actor="bench")
        conn.commit()
    seed_s = time.perf_counter() - start
    start = time.perf_counter()
    with db.connection() as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        conn.autocommit = False
    log(f"seeded in {seed_s:.1f} s, VACUUM ANALYZE {time.perf_counter() - start:.1f} s")
    result.update(seed_s=round(seed_s, 1), threads=main.written["threads"], messages=main.written["messages"])

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    a = main.account
    with db.connection() as conn:
        sample = conn.execute("SELECT id, last_activity_at FROM threads WHERE account_id = %s "
                              "ORDER BY random() LIMIT 200", (a,)).fetchall()
    # The fixed cost of an authenticated request through the test client (key check, JSON), reading nothing.
    base = timed_requests(client, headers, ["/v1/account"], rounds)
    result.update(request_p50_ms=round(pct(base, 50), 2), request_p99_ms=round(pct(base, 99), 2))
    log(f"GET /v1/account (the request alone): p50 {result['request_p50_ms']} ms, p99 {result['request_p99_ms']} ms")
    cursors = [None] + [paging.encode(r["last_activity_at"], r["id"]) for r in sample]
    rng.shuffle(cursors)
    inbox = timed_requests(client, headers, ["/v1/threads?limit=50" + (f"&before={c}" if c else "")
                                             for c in cursors], rounds)
    inbox_ref = timed_sql("SELECT * FROM threads WHERE account_id = %s AND (last_activity_at, id) < (%s, %s) "
                          "ORDER BY last_activity_at DESC, id DESC LIMIT 50",
                          [(a, r["last_activity_at"], r["id"]) for r in sample], rounds)
    result.update(figures("inbox", inbox, inbox_ref))

    longs = main.long_threads[:]
    rng.shuffle(longs)
    paths = [f"/v1/threads/{t}/messages?limit=50" + ("&before=latest" if n % 2 else "")
             for n, (t, _) in enumerate(longs)]
    msgs = timed_requests(client, headers, paths, rounds)
    msgs_ref = timed_sql("SELECT * FROM messages WHERE account_id = %s AND thread_id = %s "
                         "ORDER BY occurred_at, id LIMIT 50", [(a, t) for t, _ in longs], rounds)
    result.update(figures("messages", msgs, msgs_ref))

    if any(r.rule == "/v1/contacts/<contact_id>/timeline" for r in app.url_map.iter_rules()):
        tl = timed_requests(client, headers, [f"/v1/contacts/{c}/timeline?limit=50" for _, c in longs], rounds)
        tl_ref = timed_sql("SELECT m.* FROM messages m WHERE m.account_id = %s AND m.thread_id IN (SELECT id FROM "
                           "threads WHERE account_id = %s AND contact_id = %s) ORDER BY m.occurred_at, m.id LIMIT 50",
                           [(a, a, c) for _, c in longs], rounds)
        result.update(figures("timeline", tl, tl_ref))
    else:
        log("timeline: GET /v1/contacts/{id}/timeline is not in this tree: timeline_p99_ms is null")
        result.update(timeline_p50_ms=None, timeline_p99_ms=None)

    today = datetime.now(reports_tz()).date()
    params = Params(today - timedelta(days=30), today - timedelta(days=1), "day")
    times = []
    with db.connection() as conn:
        for _ in range(3):
            start = time.perf_counter()
            report = reports.summary(conn, account_id=a, params=params, parallel=True)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        reports.summary(conn, account_id=a, params=params)
        one_s = time.perf_counter() - start
        start = time.perf_counter()
        reports.summary(conn, account_id=a, params=Params(params.start, params.end, "agent"), parallel=True)
        agent_s = time.perf_counter() - start
        lo = datetime.combine(params.start, datetime.min.time(), reports_tz())
        hi = datetime.combine(params.end + timedelta(days=1), datetime.min.time(), reports_tz())
        start = time.perf_counter()
        ref = conn.execute("SELECT direction, count(*) AS n FROM messages WHERE account_id = %s AND occurred_at >= %s "
                           "AND occurred_at < %s GROUP BY direction", (a, lo, hi)).fetchall()
        ref_s = time.perf_counter() - start
    t = report["total"]
    log(f"30-day report by day: {statistics.median(times):.3f} s median of 3 ({', '.join(f'{x:.3f}' for x in times)}); "
        f"on one connection {one_s:.3f} s; by agent {agent_s:.3f} s; bare count of the range's "
        f"{sum(r['n'] for r in ref):,} messages {ref_s:.3f} s")
    log(f"  total: {t['inbound_messages']:,} inbound, {t['conversations']:,} conversations, {t['resolved']:,} "
        f"resolved, FRT p50 {t['first_response_median_s']} s, SL {t['service_level']}, FCR {t['fcr_rate']}, "
        f"CSAT {t['csat_average']}, out of hours {t['out_of_hours_reply_share']}")
    result.update(report_30d_s=round(statistics.median(times), 3), report_30d_one_connection_s=round(one_s, 3),
                  report_30d_agent_s=round(agent_s, 3),
                  report_ref_s=round(ref_s, 3), report_messages=sum(r["n"] for r in ref))
    return result


def reports_tz():
    from zoneinfo import ZoneInfo
    return ZoneInfo("Europe/Madrid")


def data_set_args(description: str) -> tuple[int, int, int]:
    """The command line of the benches on this data set (this one and bench/console.py): (threads, messages,
    rounds), with --quick's small set."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="10,000 threads, 100,000 messages (under a minute)")
    p.add_argument("--threads", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=500, help="timed requests per page kind")
    args = p.parse_args()
    n_threads, n_messages, rounds = ((10_000, 100_000, 200) if args.quick
                                     else (args.threads, args.messages, args.rounds))
    if n_messages < 100 * len(range(0, n_threads, 100)) + 9 * (n_threads - len(range(0, n_threads, 100))):
        p.error("give at least about 10 messages per thread")
    return n_threads, n_messages, rounds


def main() -> None:
    n_threads, n_messages, rounds = data_set_args(__doc__.split("\n")[0])
    with embedded_gateway():
        result = bench(n_threads, n_messages, rounds)
        first = ("inbox_p99_ms", "messages_p99_ms", "timeline_p99_ms", "report_30d_s")
        print(json.dumps({**{k: result.pop(k) for k in first}, **result}))


if __name__ == "__main__":
    main()

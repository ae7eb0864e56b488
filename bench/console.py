"""Benchmark: the web console's inbox page and a thread page, server time, at 1,000,000 messages.

    .venv/bin/python bench/console.py [--quick] [--threads N] [--messages M] [--rounds R]

The data set of the CRM issue (bench/threads.py's seeder: 100,000 threads holding 1,000,000 messages over 90
days, bodies encrypted per contact) in embedded PostgreSQL and Valkey; a supervisor signs in to the console.
Timed through the Flask test client (the whole request in process: the session check, the page's calls to the
REST API, Jinja; no network, no browser), R rounds each after a warm-up:

- ``GET /console/inbox``: the first page or a page deeper (a random thread's cursor) - inbox_page_*;
- ``GET /console/threads/{id}`` of a random long thread (100 messages) - thread_page_*.

The reference, in the same run on the same data: the REST API calls the page is built from, made with an API
key through the same client (``GET /v1/threads?limit=50`` and ``/v1/channels/summary`` for the inbox; the thread,
its latest 50 messages and its notes for a thread page) - ``*_api_p99_ms``, and the page's cost over them as
``*_over_api`` (p50 ratio): the session check, the in-process dispatch and the HTML.
Aim: pages p99 < 50 ms.

The last line is one JSON object: {"inbox_page_p99_ms", "thread_page_p99_ms", ...}. ``--quick`` (10,000 threads,
100,000 messages, fewer rounds) gives the same keys in under a minute.
"""
from __future__ import annotations

import json
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _embedded import embedded_gateway  # noqa: E402
from threads import Seeder, data_set_args, log, pct  # noqa: E402

PASSWORD = "bench-console-password"


def timed_gets(client, paths: list[str], rounds: int, headers: dict | None = None, warmup: int = 20) -> list[float]:
    from _timing import timed
    for path in paths[:warmup]:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True)[:300])

    def get(path):
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code)
    return [1000 * timed(get, paths[n % len(paths)]) for n in range(rounds)]


def timed_calls(fn, args: list, rounds: int, warmup: int = 20) -> list[float]:
    from _timing import timed
    for arg in args[:warmup]:
        fn(arg)
    return [1000 * timed(fn, args[n % len(args)]) for n in range(rounds)]


def sign_in(client, email: str) -> None:
    form = client.get("/console/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.get_data(as_text=True)).group(1)
    r = client.post("/console/signin", data={"email": email, "password": PASSWORD, "csrf_token": token,
                                             "next": "/console/inbox"})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]


def figures(name: str, page: list[float], api: list[float]) -> dict:
    out = {f"{name}_p50_ms": round(pct(page, 50), 2), f"{name}_p99_ms": round(pct(page, 99), 2),
           f"{name}_api_p50_ms": round(pct(api, 50), 2), f"{name}_api_p99_ms": round(pct(api, 99), 2),
           f"{name}_over_api": round(pct(page, 50) / pct(api, 50), 2)}
    log(f"{name}: p50 {out[f'{name}_p50_ms']} ms, p99 {out[f'{name}_p99_ms']} ms; the API calls it is built from: "
        f"p50 {out[f'{name}_api_p50_ms']} ms, p99 {out[f'{name}_api_p99_ms']} ms")
    return out


def bench(n_threads: int, n_messages: int, rounds: int) -> dict:
    from gateway import accounts, db
    from gateway.api import paging
    from gateway.app import create_app
    from gateway.console import users

    rng = random.Random(20261124)
    now = datetime.now(timezone.utc)
    start = time.perf_counter()
    with db.connection() as conn:
        main = Seeder(conn, "console-main", n_threads, n_messages, now, rng)
        main.seed()
        log(f"seeded: {main.written}")
        supervisor = users.create_user(conn, account_id=main.account, email="supervisor@bench.example",
                                       name="Bench Supervisor", role="supervisor", actor="bench", password=PASSWORD)
        _, key = accounts.create_api_key(conn, account_id=main.account, name="bench",
                                         scopes=["messages:read", "contacts:read"], actor="bench")
        conn.commit()
    seed_s = time.perf_counter() - start
    with db.connection() as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        conn.autocommit = False
        sample = conn.execute("SELECT id, last_activity_at FROM threads WHERE account_id = %s "
                              "ORDER BY random() LIMIT 200", (main.account,)).fetchall()
    log(f"seeded in {seed_s:.1f} s (and VACUUM ANALYZE)")
    result: dict = {"threads": main.written["threads"], "messages": main.written["messages"], "rounds": rounds}

    app = create_app()
    page_client, api_client = app.test_client(), app.test_client()
    sign_in(page_client, supervisor["email"])
    headers = {"Authorization": f"Bearer {key}"}

    cursors = [None] + [paging.encode(r["last_activity_at"], r["id"]) for r in sample]
    rng.shuffle(cursors)
    inbox = timed_gets(page_client, ["/console/inbox" + (f"?before={c}" if c else "") for c in cursors], rounds)
    def api_inbox(cursor):
        for path in ("/v1/threads?limit=50" + (f"&before={cursor}" if cursor else ""), "/v1/channels/summary"):
            r = api_client.get(path, headers=headers)
            assert r.status_code == 200, (path, r.status_code)
    inbox_api = timed_calls(api_inbox, cursors, rounds)
    result.update(figures("inbox_page", inbox, inbox_api))

    longs = [t for t, _ in main.long_threads]
    rng.shuffle(longs)
    thread = timed_gets(page_client, [f"/console/threads/{t}" for t in longs], rounds)

    def api_thread(path_id):
        for path in (f"/v1/threads/{path_id}", f"/v1/threads/{path_id}/messages?limit=50&before=latest",
                     f"/v1/threads/{path_id}/notes"):
            r = api_client.get(path, headers=headers)
            assert r.status_code == 200, (path, r.status_code)
    thread_api = timed_calls(api_thread, longs, rounds)
    result.update(figures("thread_page", thread, thread_api))
    return result


def main() -> None:
    n_threads, n_messages, rounds = data_set_args(__doc__.split("\n")[0])
    with embedded_gateway():
        result = bench(n_threads, n_messages, rounds)
        first = ("inbox_page_p99_ms", "thread_page_p99_ms")
        print(json.dumps({**{k: result.pop(k) for k in first}, **result}))


if __name__ == "__main__":
    main()

"""Benchmark: erasing a contact with 10,000 messages, and retention throughput, each against a reference.

    .venv/bin/python bench/erasure.py [--quick] [--messages N] [--rounds R] [--expired N]

Same run, same machine, embedded PostgreSQL and Valkey in a temporary folder:

- **Erasure.** Each round seeds two identical contacts: N messages (default 10,000; half inbound, half
  outbound with a provider id), a status history (one row per inbound message, three per outbound), one
  attachment per 100 messages (20 KB of encrypted bytes each), one raw webhook per inbound message (linked
  to the contact and under its key, as the worker leaves them), a consent event and a merged contact. The
  first is erased by ``contacts.erase_contact`` (keys shredded, rows and media deleted, raw bodies wiped,
  tombstones, event and audit row), committed; ``erase_10k_s`` is the median. The reference erases the
  second with a plain ``DELETE FROM contacts`` and its cascades, no shredding (``plain_delete_s``);
  ``seed_s`` is the time one contact took to seed.
- **Retention.** Two accounts each get E expired messages (with statuses) and E processed raw events
  older than their periods (default E = 50,000). ``retention.run`` handles the first in batches of 1,000
  rows, each its own transaction (``retention_rows_per_s``: message contents wiped plus raw events
  deleted, per second). The reference does the same to the second account with one UPDATE and one
  DELETE in one transaction (``single_statement_rows_per_s``), which locks everything it touches until
  it commits - what batching exists to avoid.

The last line is one JSON object: {"erase_10k_s", "retention_rows_per_s", "plain_delete_s", "seed_s",
"single_statement_rows_per_s", ...}. ``--quick`` (one round, E = 10,000) gives the same keys in under a minute.
"""
from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _embedded import embedded_gateway  # noqa: E402
PHONE_NUMBER_ID = "109000000000077"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _account(conn, name: str, **retention):
    from gateway import accounts, channels
    account = accounts.create_account(conn, name=f"{name}-{secrets.token_hex(3)}", actor="bench")
    if retention:
        accounts.update_account(conn, account_id=account["id"], changes=retention, actor="bench")
    channel = channels.create_channel(conn, account_id=account["id"], kind="whatsapp", name="bench",
                                      external_id=f"{PHONE_NUMBER_ID}{secrets.token_hex(3)}", actor="bench",
                                      credentials={"app_secret": "s", "access_token": "t", "verify_token": "v"})
    return account["id"], channel["id"]


def seed(conn, account_id, channel_id, *, messages: int, age_days: int = 0, media_every: int = 100,
         raw_events: bool = True, merged: bool = True):
    """A contact with ``messages`` messages and everything that hangs off them, in a few set-based
    statements (the bench measures erasing it, not the inbound path)."""
    from psycopg.types.json import Jsonb

    from gateway import contacts, merges, messages as msgs
    from gateway.crypto import field_aad
    from gateway.db import uuid7

    phone = f"+3461{secrets.randbelow(10 ** 7):07d}"
    contact = contacts.create_contact(conn, account_id=account_id, name="Bench Customer", view=False,
                                      identities=[("phone", phone)], actor="bench")["id"]
    if merged:
        other = contacts.create_contact(conn, account_id=account_id, name="Bench Alias", view=False,
                                        identities=[("phone", f"+3462{secrets.randbelow(10 ** 7):07d}")],
                                        actor="bench")["id"]
        merges.merge(conn, account_id=account_id, survivor_id=contact, merged_id=other, actor="bench")
    key = contacts.contact_key(conn, account_id=account_id, contact_id=contact)
    thread = msgs.thread_for(conn, account_id=account_id, contact_id=contact, channel_id=channel_id)["id"]
    ids = [uuid7() for _ in range(messages)]
    inbound = [i % 2 == 0 for i in range(messages)]
    pids = [f"wamid.{secrets.token_hex(12)}" for _ in range(messages)]
    conn.execute(
        "INSERT INTO messages (account_id, id, thread_id, contact_id, channel_id, direction, kind, body_enc, "
        "provider_id_enc, provider_id_bidx, status, status_rank, occurred_at) "
        "SELECT %(a)s, v.id, %(t)s, %(c)s, %(ch)s, v.dir, 'text', v.body, v.pid, v.bidx, v.st, v.rank, "
        "now() - make_interval(days => %(age)s) "
        "FROM unnest(%(id)s::uuid[], %(dir)s::text[], %(body)s::bytea[], %(pid)s::bytea[], %(bidx)s::bytea[], "
        "%(st)s::text[], %(rank)s::int[]) AS v(id, dir, body, pid, bidx, st, rank)",
        {"a": account_id, "t": thread, "c": contact, "ch": channel_id, "age": age_days, "id": ids,
         "dir": ["inbound" if i else "outbound" for i in inbound],
         "body": [key.encrypt(f"message {n} with some ordinary length of text, as customers write",
                              field_aad("messages", "body", account_id, m)) for n, m in enumerate(ids)],
         "pid": [key.encrypt(p, field_aad("messages", "provider_id", account_id, m)) for p, m in zip(pids, ids)],
         "bidx": [msgs.provider_id_bidx(account_id, p) for p in pids],
         "st": ["received" if i else "read" for i in inbound], "rank": [0 if i else 4 for i in inbound]})
    ev_msg, ev_status = [], []
    for m, i in zip(ids, inbound):
        for word in (("received",) if i else ("sent", "delivered", "read")):
            ev_msg.append(m)
            ev_status.append(word)
    conn.execute(
        "INSERT INTO message_events (account_id, id, message_id, status, detail) "
        "SELECT %s, v.id, v.m, v.s, %s FROM unnest(%s::uuid[], %s::uuid[], %s::text[]) AS v(id, m, s)",
        (account_id, Jsonb({"pricing": {"billable": True}}), [uuid7() for _ in ev_msg], ev_msg, ev_status))
    media_ids = [uuid7() for _ in ids[::media_every]]
    blob = secrets.token_bytes(20_000)
    conn.execute(
        "INSERT INTO media (account_id, id, message_id, contact_id, channel_id, kind, source_enc, state, "
        "content_enc, size_bytes) SELECT %s, v.id, v.m, %s, %s, 'image', v.src, 'stored', v.content, 20000 "
        "FROM unnest(%s::uuid[], %s::uuid[], %s::bytea[], %s::bytea[]) AS v(id, m, src, content)",
        (account_id, contact, channel_id, media_ids, ids[::media_every],
         [key.encrypt("{}", field_aad("media", "source", account_id, x)) for x in media_ids],
         [key.encrypt(blob, field_aad("media", "content", account_id, x)) for x in media_ids]))
    if raw_events:
        seed_raw_events(conn, account_id, channel_id, sum(inbound), key=key, contact_id=contact, age_days=age_days)
    consent_id = uuid7()
    conn.execute("INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, "
                 "proof_enc, occurred_at) VALUES (%s, %s, %s, 'whatsapp', 'marketing', 'granted', 'api', %s, now())",
                 (account_id, consent_id, contact,
                  key.encrypt("I agree", field_aad("consent_events", "proof", account_id, consent_id))))
    return contact


def seed_raw_events(conn, account_id, channel_id, n: int, *, key, contact_id=None, age_days: int = 0) -> None:
    """n processed raw webhooks (~1.2 KB each), linked to the contact when one is given."""
    from gateway.crypto import field_aad
    from gateway.db import uuid7
    ids = [uuid7() for _ in range(n)]
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "messages": [{"text": {"body": "x" * 900}}]}}]}]}).encode()
    conn.execute(
        "INSERT INTO inbound_events (account_id, id, channel_id, provider, dedupe_key, data_key_id, raw_enc, "
        "received_at, processed_at, attempts) SELECT %s, v.id, %s, 'whatsapp', 'sha256:' || v.id::text, %s, v.raw, "
        "now() - make_interval(days => %s), now() - make_interval(days => %s), 1 "
        "FROM unnest(%s::uuid[], %s::bytea[]) AS v(id, raw)",
        (account_id, channel_id, key.id, age_days, age_days, ids,
         [key.encrypt(body, field_aad("inbound_events", "raw", account_id, i)) for i in ids]))
    if contact_id is not None:
        conn.execute("INSERT INTO inbound_event_contacts (account_id, contact_id, event_id) "
                     "SELECT %s, %s, unnest(%s::uuid[])", (account_id, contact_id, ids))


def bench_erasure(n_messages: int, rounds: int) -> dict:
    from gateway import contacts, db
    erase, plain, seeds = [], [], []
    for r in range(rounds):
        with db.connection() as conn:
            account_id, channel_id = _account(conn, "erase")
        pair = []
        for _ in range(2):
            start = time.perf_counter()
            with db.connection() as conn:
                pair.append(seed(conn, account_id, channel_id, messages=n_messages))
            seeds.append(time.perf_counter() - start)
        with db.connection() as conn:
            conn.execute("ANALYZE")
        start = time.perf_counter()
        with db.connection() as conn:
            assert contacts.erase_contact(conn, account_id=account_id, contact_id=pair[0], actor="bench")
        erase.append(time.perf_counter() - start)
        start = time.perf_counter()
        with db.connection() as conn:
            conn.execute("DELETE FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s)",
                         (account_id, pair[1], pair[1]))
        plain.append(time.perf_counter() - start)
        log(f"round {r + 1}/{rounds}: erase {erase[-1]:.3f} s, plain cascade DELETE {plain[-1]:.3f} s, "
            f"seed {seeds[-1]:.2f} s ({n_messages:,} messages)")
    return {"erase_10k_s": round(statistics.median(erase), 4), "plain_delete_s": round(statistics.median(plain), 4),
            "seed_s": round(statistics.median(seeds), 3), "erase_vs_plain": round(statistics.median(erase) /
                                                                                  statistics.median(plain), 2),
            "messages": n_messages, "rounds": rounds}


def bench_retention(expired: int) -> dict:
    from gateway import db, keystore, retention
    accounts_ = []
    for name in ("retention-batched", "retention-single"):
        with db.connection() as conn:
            account_id, channel_id = _account(conn, name, retention_message_days=30, retention_raw_event_days=7)
        start = time.perf_counter()
        for chunk in range(0, expired, 10_000):
            with db.connection() as conn:
                seed(conn, account_id, channel_id, messages=min(10_000, expired - chunk), age_days=40,
                     raw_events=False, merged=False, media_every=10 ** 9)
                seed_raw_events(conn, account_id, channel_id, min(10_000, expired - chunk),
                                key=keystore.account_key(conn, account_id=account_id), age_days=40)
        log(f"{name}: seeded {expired:,} expired messages and {expired:,} raw events in "
            f"{time.perf_counter() - start:.1f} s")
        accounts_.append(account_id)
    with db.connection() as conn:
        conn.execute("ANALYZE")

    shown = {"t": time.monotonic()}

    def progress(policy, table, done, due):
        if time.monotonic() - shown["t"] > 2:
            shown["t"] = time.monotonic()
            log(f"  batched: {table} {done:,} of {due:,}")

    start = time.perf_counter()
    report = retention.run(accounts_[0], progress=progress)
    batched_s = time.perf_counter() - start
    rows = sum(n for (a, t), n in report.done.items() if t in ("messages", "inbound_events"))
    assert rows == 2 * expired, report.rows()

    start = time.perf_counter()
    with db.connection() as conn:
        a = accounts_[1]
        n = conn.execute("UPDATE messages SET body_enc = NULL, content_enc = NULL, content_erased_at = now() "
                         "WHERE account_id = %s AND content_erased_at IS NULL "
                         "AND occurred_at < now() - interval '30 days'", (a,)).rowcount
        n += conn.execute("DELETE FROM inbound_events WHERE account_id = %s AND processed_at IS NOT NULL "
                          "AND received_at < now() - interval '7 days'", (a,)).rowcount
    single_s = time.perf_counter() - start
    assert n == 2 * expired
    log(f"retention: batched {rows:,} rows in {batched_s:.2f} s, one statement each in {single_s:.2f} s")
    return {"retention_rows_per_s": round(rows / batched_s), "single_statement_rows_per_s": round(n / single_s),
            "retention_vs_single": round((rows / batched_s) / (n / single_s), 2), "retention_rows": rows,
            "retention_batch": retention.BATCH}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one round, 10,000 expired rows (under a minute)")
    p.add_argument("--messages", type=int, default=10_000, help="messages of the erased contact")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--expired", type=int, default=50_000, help="expired messages (and as many raw events)")
    args = p.parse_args()
    rounds, expired = (1, 10_000) if args.quick else (args.rounds, args.expired)

    with embedded_gateway():
        result = bench_erasure(args.messages, rounds)
        result.update(bench_retention(expired))
        print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Benchmark and quality gate of the level-1 assistant on the project's evaluation set.

Run from the repository root:

    .venv/bin/python bench/assistant.py [--quick] [--compare] [--sweep]

Same run, same machine, embedded PostgreSQL in a temporary folder (or DATABASE_URL's server, in a fresh
database). It imports tests/data/assistant/kb_entries.yaml (59 entries, English and Spanish) into a
fresh account through the import path, then puts every question of tests/data/assistant/questions.csv
(177 paraphrased questions with the entry that answers them, 45 that nothing should answer) through
``gateway.assistant.reply`` without an LLM, each in its own transaction as the automation worker will.

- answered_share: questions that got an answer; handoff_share: the rest;
- accuracy_answered: answers from the expected entry among the answered (an out-of-scope question
  answered counts as wrong);
- decision_p99_ms: p99 of the wall time of one ``reply`` call (warm index, one round trip to PostgreSQL),
  over ``--rounds`` passes of the whole set;
- reference: fts_p99_ms, the p99 of a bare PostgreSQL full-text query over the same entries
  (``retrieve.fts_search``), which is what an SQL-only assistant would cost at least.

``--compare`` also reports the accuracy of ranking with PostgreSQL's ts_rank_cd alone at its best
threshold; ``--sweep`` prints answered share and accuracy for a range of thresholds (how the default was
chosen). The last line on stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data" / "assistant"


def load_eval_set(conn, account_id) -> tuple[dict, list[dict]]:
    """Import the entries into the account; return ({key: entry id}, questions with expected ids)."""
    import yaml
    from gateway.assistant import kb
    body = (DATA / "kb_entries.yaml").read_text()
    keys = [e["key"] for e in yaml.safe_load(body)]
    result = kb.import_entries(conn, account_id=account_id, body=body, fmt="yaml")
    assert not result["problems"], result["problems"]
    ids = {key: row["id"] for key, row in zip(keys, result["imported"])}
    with open(DATA / "questions.csv", newline="") as f:
        questions = [{"text": r["text"], "language": r["language"],
                      "expected": ids[r["expected"]] if r["expected"] else None} for r in csv.DictReader(f)]
    return ids, questions


def score(outcomes: list[tuple[object, object]]) -> dict:
    """outcomes: (expected id or None, answered id or None) per question."""
    answered = [(e, a) for e, a in outcomes if a is not None]
    right = sum(1 for e, a in answered if e == a)
    n = len(outcomes)
    return {"answered_share": round(len(answered) / n, 4) if n else 0.0,
            "accuracy_answered": round(right / len(answered), 4) if answered else 0.0,
            "handoff_share": round((n - len(answered)) / n, 4) if n else 0.0}


def _p99(samples: list[float]) -> float:
    return round(statistics.quantiles(samples, n=100)[98] * 1000, 3) if len(samples) > 1 else 0.0


def run(rounds: int, compare: bool, sweep: bool) -> dict:
    from gateway import accounts, db
    from gateway.assistant import decide, reply, retrieve, DEFAULT_THRESHOLD

    with db.connection() as conn:
        account = accounts.create_account(conn, name=f"bench-{secrets.token_hex(3)}", actor="bench")
        _, questions = load_eval_set(conn, account["id"])
        conn.commit()
    account_id = account["id"]

    outcomes, decisions = [], []
    with db.connection() as conn:
        for q in questions:
            d = decide(conn, account_id=account_id, text=q["text"], language=q["language"], llm=False)
            decisions.append((q, d))
            outcomes.append((q["expected"], d.answer.entry_id if d.answer else None))
        conn.rollback()
    result = score(outcomes)
    for q, d in decisions:
        if d.answer is not None and d.answer.entry_id != q["expected"] or (
                d.answer is None and q["expected"] is not None):
            best = d.best
            print(f"  {'MISS' if d.answer is None else 'WRONG'} {d.best.score if best else 0:.2f} "
                  f"{q['text']!r} -> {best.question if best else None!r}", file=sys.stderr)

    if sweep:
        for t in [x / 100 for x in range(20, 85, 5)]:
            o = [(q["expected"], d.best.entry_id if d.best and d.best.score >= t else None) for q, d in decisions]
            print(f"threshold {t:.2f}: {score(o)}", file=sys.stderr)

    # Timing: every question in its own short transaction, as the automation worker runs it.
    samples: list[float] = []
    fts_samples: list[float] = []
    gc.disable()
    try:
        with db.connection() as conn:
            for _ in range(rounds):
                for q in questions:
                    start = time.perf_counter()
                    reply(conn, account_id=account_id, text=q["text"], language=q["language"], llm=False)
                    conn.commit()
                    samples.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    retrieve.fts_search(conn, account_id=account_id, text=q["text"], language=q["language"])
                    conn.commit()
                    fts_samples.append(time.perf_counter() - start)
    finally:
        gc.enable()
    result["decision_p99_ms"] = _p99(samples)
    result["decision_p50_ms"] = round(statistics.median(samples) * 1000, 3)
    result["fts_p99_ms"] = _p99(fts_samples)
    result["threshold"] = DEFAULT_THRESHOLD
    result["questions"] = len(questions)

    if compare:
        with db.connection() as conn:
            ranked = [(q["expected"], retrieve.fts_search(conn, account_id=account_id, text=q["text"],
                                                          language=q["language"], limit=1)) for q in questions]
        best = None
        for t in [x / 100 for x in range(5, 100, 5)]:
            s = score([(e, r[0][0] if r and r[0][1] >= t else None) for e, r in ranked])
            if s["accuracy_answered"] >= 0.9 and (best is None or s["answered_share"] > best[1]["answered_share"]):
                best = (t, s)
            print(f"fts threshold {t:.2f}: {s}", file=sys.stderr)
        top1 = sum(1 for e, r in ranked if e is not None and r and r[0][0] == e)
        in_scope = sum(1 for e, _ in ranked if e is not None)
        bm25_top1 = sum(1 for q, d in decisions if q["expected"] is not None and d.best
                        and d.best.entry_id == q["expected"])
        result["compare"] = {"bm25_top1_in_scope": round(bm25_top1 / in_scope, 4),
                             "fts_top1_in_scope": round(top1 / in_scope, 4),
                             "fts_best_threshold": best[0] if best else None,
                             "fts_at_best_threshold": best[1] if best else None}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 timing rounds instead of 20 (under a minute)")
    parser.add_argument("--rounds", type=int, help="timing passes over the question set")
    parser.add_argument("--compare", action="store_true", help="also rank with PostgreSQL ts_rank_cd alone")
    parser.add_argument("--sweep", action="store_true", help="answered share and accuracy per threshold")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 20)

    from gateway.crypto import Keyring
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    servers = None
    created = None
    try:
        env = {"GATEWAY_KEYRING_FILE": str(Keyring.generate().save(tmp / "keyring.json")),
               "GATEWAY_LOG_LEVEL": "WARNING", "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:1/0"}
        if os.environ.get("DATABASE_URL"):
            import psycopg
            from urllib.parse import urlsplit, urlunsplit
            admin = os.environ["DATABASE_URL"]
            name = f"gw_bench_{secrets.token_hex(4)}"
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            created = (admin, name)
            env["DATABASE_URL"] = urlunsplit(urlsplit(admin)._replace(path="/" + name))
        else:
            from gateway.embedded import EmbeddedServers
            servers = EmbeddedServers(tmp / "data")
            env["DATABASE_URL"] = servers.start_postgres("bench")
        os.environ.update(env)
        os.environ.pop("GATEWAY_MASTER_KEYS", None)
        from gateway import db, runtime
        from gateway.migrate import migrate
        migrate(os.environ["DATABASE_URL"], log=lambda m: None)
        runtime.init()
        result = run(rounds, args.compare, args.sweep)
        db.close()
        table = "\n".join(f"  {k:>20}: {v}" for k, v in result.items() if k != "compare")
        print(f"level-1 assistant on {result['questions']} questions, {rounds} timing rounds\n{table}", file=sys.stderr)
        keys = ("answered_share", "accuracy_answered", "handoff_share", "decision_p99_ms", "fts_p99_ms")
        last = {k: result[k] for k in keys}
        if "compare" in result:
            last["compare"] = result["compare"]
        print(json.dumps(last))
    finally:
        if created is not None:
            import psycopg
            with psycopg.connect(created[0], autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{created[1]}" WITH (FORCE)')
        if servers is not None:
            servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

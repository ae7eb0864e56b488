"""Benchmark: importing a contacts CSV through gateway.contact_import, against a plain COPY of the same rows.

    .venv/bin/python bench/contact_import.py [--quick] [--rows N] [--batch B]

Same run, same machine, embedded PostgreSQL and Valkey in a temporary folder. The file has N rows (default
100,000; ``--quick`` 20,000) of distinct Spanish mobile numbers written as people write them (``+34 6xx xx xx
xx``), a name, a language, tags, three attribute columns and, on half the rows, a marketing consent with
its proof (text, version, date): what a campaign's audience file looks like.

- ``import_rows_per_s``: ``contact_import.run`` into a fresh account, from the file's bytes to the last
  commit: decoding, parsing, phone normalisation, a data key per contact, encryption of every personal
  field, blind indexes, contacts, identities, import rows and consent events.
- ``reimport_rows_per_s``: the same file again into the same account (every row now updates a contact).
- ``reference_rows_per_s``: the floor the database sets: the same file read with ``csv.reader`` and written
  with one psycopg ``COPY`` (``write_row``) into a temporary table of text columns; no validation, no
  encryption, no index.

The last line on stdout is one JSON object: {"rows", "import_rows_per_s", "reference_rows_per_s", ...}.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _embedded import embedded_gateway  # noqa: E402

COLUMNS = ["phone", "name", "language", "tags", "city", "plan", "amount", "consent_marketing",
           "consent_source_text", "consent_text_version", "consent_at"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_csv(n: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    numbers = rnd.sample(range(10 ** 8), n)
    names = ["Ana García", "Luis Pérez", "Marta Ruiz", "José Núñez", "Lucía Gómez", "Pablo Sanz"]
    cities = ["Madrid", "Sevilla", "Valencia", "Bilbao", "A Coruña"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for i, num in enumerate(numbers):
        s = f"{num:08d}"
        consent = i % 2 == 0
        w.writerow([f"+34 6{s[0:2]} {s[2:4]} {s[4:6]} {s[6:8]}", rnd.choice(names), rnd.choice(["es", "ca", "en"]),
                    "cliente|vip" if i % 5 == 0 else "cliente", rnd.choice(cities), rnd.choice(["basic", "pro"]),
                    f"{rnd.randrange(5, 500)}.{rnd.randrange(100):02d}",
                    "yes" if consent else "", "Acepto recibir ofertas por WhatsApp" if consent else "",
                    "promo-v2" if consent else "", "2026-01-15T10:00:00Z" if consent else ""])
    return out.getvalue().encode()


def reference(data: bytes) -> float:
    from gateway import db
    with db.connection() as conn:
        conn.execute(f"CREATE TEMP TABLE ref_import ({', '.join(c + ' text' for c in COLUMNS)})")
        start = time.perf_counter()
        reader = csv.reader(io.StringIO(data.decode()))
        next(reader)
        with conn.cursor().copy(f"COPY ref_import ({', '.join(COLUMNS)}) FROM STDIN") as cp:
            for row in reader:
                cp.write_row(row)
        conn.commit()
        return time.perf_counter() - start


def run_import(account_id, data: bytes, batch: int) -> tuple[float, dict]:
    from gateway import contact_import, db
    with db.connection() as conn:
        start = time.perf_counter()
        summary = contact_import.run(conn, account_id=account_id, data=data, actor="bench", batch_size=batch)
        return time.perf_counter() - start, summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="20,000 rows")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=None, help="rows per batch (default: contact_import.BATCH)")
    args = p.parse_args()
    n = 20_000 if args.quick else args.rows

    with embedded_gateway():
        from gateway import accounts, contact_import, db
        batch = args.batch or contact_import.BATCH
        data = make_csv(n)
        log(f"{n:,} rows, {len(data) / 1_048_576:.1f} MB, batches of {batch:,}")
        with db.connection() as conn:
            account_id = accounts.create_account(conn, name=f"bench-{secrets.token_hex(3)}", actor="bench")["id"]
        ref_s = reference(data)
        log(f"reference COPY: {ref_s:.2f} s ({n / ref_s:,.0f} rows/s)")
        import_s, summary = run_import(account_id, data, batch)
        assert summary["created"] == n and summary["skipped"] == 0, summary
        log(f"import: {import_s:.2f} s ({n / import_s:,.0f} rows/s)")
        reimport_s, summary = run_import(account_id, data, batch)
        assert summary["updated"] == n and summary["created"] == 0, summary
        log(f"re-import: {reimport_s:.2f} s ({n / reimport_s:,.0f} rows/s)")
        print(json.dumps({"rows": n, "import_rows_per_s": round(n / import_s),
                          "reference_rows_per_s": round(n / ref_s), "reimport_rows_per_s": round(n / reimport_s),
                          "import_s": round(import_s, 2), "batch": batch}))


if __name__ == "__main__":
    main()

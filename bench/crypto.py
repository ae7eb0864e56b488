"""Benchmark: field encryption through gateway.crypto vs raw AES-GCM.

Run from the repository root:

    .venv/bin/python bench/crypto.py [--quick]

For a 200-byte field it measures, in the same run and interleaved round by round,

- enc_per_s / dec_per_s: ``DataKey.encrypt(value, field_aad(...))`` and
  ``DataKey.decrypt(token, field_aad(...))``, the AAD being built per call from
  the account and row UUIDs, as the data layer does per row;
- raw_enc_per_s / raw_dec_per_s: raw AES-GCM from cryptography on the same key with a
  fixed, precomputed AAD of the same length, storing what any correct use must store:
  ``nonce + AESGCM.encrypt(nonce, data, aad)`` with a fresh ``os.urandom(12)`` nonce,
  and ``AESGCM.decrypt(blob[:12], blob[12:], aad)`` to read it back;
- ratio = min(enc_per_s / raw_enc_per_s, dec_per_s / raw_dec_per_s).

Each figure is the median over the rounds. A human-readable table goes to stderr;
the last line on stdout is one JSON object with the five figures.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._timing import timed  # noqa: E402

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from gateway.crypto import DataKey, field_aad, new_data_key_material  # noqa: E402

FIELD_BYTES = 200
DISTINCT_ROWS = 4096


_timed = timed


# The four loops share one shape (iterate a prebuilt list of length n) so that
# harness overhead is the same on both sides of the comparison.

def _layer_encrypt(key: DataKey, value: str, account_id, rows: list) -> None:
    encrypt = key.encrypt
    for row_id in rows:
        encrypt(value, field_aad("messages", "body", account_id, row_id))


def _layer_decrypt(key: DataKey, account_id, pairs: list) -> None:
    decrypt = key.decrypt
    for row_id, token in pairs:
        decrypt(token, field_aad("messages", "body", account_id, row_id))


def _raw_encrypt(aead: AESGCM, data: bytes, aad: bytes, rows: list) -> None:
    encrypt = aead.encrypt
    urandom = os.urandom
    for _ in rows:
        nonce = urandom(12)
        nonce + encrypt(nonce, data, aad)


def _raw_decrypt(aead: AESGCM, aad: bytes, pairs: list) -> None:
    decrypt = aead.decrypt
    for blob in pairs:
        decrypt(blob[:12], blob[12:], aad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds of 50k ops instead of 5 rounds of 200k")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--ops", type=int, help="override the operations per measurement")
    parser.add_argument("--rows", type=int, default=DISTINCT_ROWS,
                        help=f"distinct row ids (and tokens) cycled through; 0 = one per "
                             f"operation (default {DISTINCT_ROWS}: hot in CPU cache, as a row "
                             f"just fetched from the database would be)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    ops = args.ops or (50_000 if args.quick else 200_000)

    material = new_data_key_material()
    key = DataKey(uuid.uuid4(), material)
    aead = AESGCM(material)

    account_id = uuid.uuid4()
    # Many distinct rows (uuid.UUID objects, as psycopg returns them), cycled: the
    # layer cannot profit much from caching per-row work, yet the objects stay
    # cache-hot like a row the data layer has just fetched.
    distinct = args.rows if args.rows > 0 else ops
    row_ids = [uuid.uuid4() for _ in range(distinct)]
    value = ("x" * FIELD_BYTES)  # what the data layer hands over: a str
    data = value.encode()
    assert len(data) == FIELD_BYTES
    fixed_aad = field_aad("messages", "body", account_id, row_ids[0])  # same length as per-row AADs

    layer_tokens = [(r, key.encrypt(value, field_aad("messages", "body", account_id, r)))
                    for r in row_ids]
    raw_tokens = []
    for _ in range(distinct):
        nonce = os.urandom(12)
        raw_tokens.append(nonce + aead.encrypt(nonce, data, fixed_aad))
    # Prebuilt op lists of length ops: both sides iterate the same shape of list.
    rows = [row_ids[i % distinct] for i in range(ops)]
    layer_pairs = [layer_tokens[i % distinct] for i in range(ops)]
    raw_pairs = [raw_tokens[i % distinct] for i in range(ops)]

    # Sanity: both paths really round-trip before we time them.
    r0, t0 = layer_pairs[0]
    assert key.decrypt(t0, field_aad("messages", "body", account_id, r0)) == data
    assert aead.decrypt(raw_pairs[0][:12], raw_pairs[0][12:], fixed_aad) == data

    # Warm-up (small) so the first timed round is not paying for first-use costs.
    warm = min(ops, 5_000)
    _layer_encrypt(key, value, account_id, rows[:warm])
    _raw_encrypt(aead, data, fixed_aad, rows[:warm])
    _layer_decrypt(key, account_id, layer_pairs[:warm])
    _raw_decrypt(aead, fixed_aad, raw_pairs[:warm])

    samples: dict[str, list[float]] = {"enc": [], "raw_enc": [], "dec": [], "raw_dec": []}
    jobs = {
        "enc": (_layer_encrypt, key, value, account_id, rows),
        "raw_enc": (_raw_encrypt, aead, data, fixed_aad, rows),
        "dec": (_layer_decrypt, key, account_id, layer_pairs),
        "raw_dec": (_raw_decrypt, aead, fixed_aad, raw_pairs),
    }
    forward = ["enc", "raw_enc", "dec", "raw_dec"]
    backward = ["raw_enc", "enc", "raw_dec", "dec"]
    started = time.perf_counter()
    for rnd in range(rounds):
        # Alternate which side goes first so drift (thermal, turbo) cancels out.
        for name in (forward if rnd % 2 == 0 else backward):
            fn, *fargs = jobs[name]
            samples[name].append(ops / _timed(fn, *fargs))
    elapsed = time.perf_counter() - started

    med = {name: statistics.median(vals) for name, vals in samples.items()}
    enc_ratio = med["enc"] / med["raw_enc"]
    dec_ratio = med["dec"] / med["raw_dec"]
    result = {
        "enc_per_s": int(med["enc"]),
        "dec_per_s": int(med["dec"]),
        "raw_enc_per_s": int(med["raw_enc"]),
        "raw_dec_per_s": int(med["raw_dec"]),
        "ratio": round(min(enc_ratio, dec_ratio), 3),
    }

    err = sys.stderr
    print(f"gateway.crypto field benchmark: {FIELD_BYTES}-byte field, {rounds} rounds x "
          f"{ops:,} ops over {distinct:,} distinct rows, medians ({elapsed:.1f}s timed)", file=err)
    print(f"{'':10}{'layer ops/s':>14}{'raw ops/s':>14}{'layer/raw':>11}   per-round layer | raw",
          file=err)
    for label, name, ratio in (("encrypt", "enc", enc_ratio), ("decrypt", "dec", dec_ratio)):
        per_round = (" ".join(f"{v / 1e3:.0f}k" for v in samples[name]) + " | "
                     + " ".join(f"{v / 1e3:.0f}k" for v in samples["raw_" + name]))
        print(f"{label:10}{med[name]:>14,.0f}{med['raw_' + name]:>14,.0f}{ratio:>11.3f}   {per_round}",
              file=err)
    print(f"ratio (min of the two): {result['ratio']:.3f}", file=err)
    sys.stderr.flush()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

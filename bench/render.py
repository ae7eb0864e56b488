"""Benchmark: rendering a WhatsApp template with templates_catalog.render vs serialising the result.

Run from the repository root:

    .venv/bin/python bench/render.py [--quick]

The template is the campaign case: a body with 5 positional parameters, a footer, and a URL button
with a dynamic suffix (plus a quick reply that is left unset). On one core, in the same run and
interleaved round by round, it measures

- renders_per_s: ``render(definition, values)``, as a campaign calls it for each contact: the
  compiled form looked up in the cache, every value checked against Meta's rules, and all three
  views built (the Cloud API object, the thread text and the plain-text version);
- reference_per_s: ``json.dumps`` of the very Cloud API objects the renders produce, which every
  send does anyway to make the HTTP body: a yardstick of "a few small dicts' worth" of work;
- ratio = renders_per_s / reference_per_s (above 1: rendering costs less than serialising its result).

``str.format`` of the bare body with the same values is also timed and shown on stderr, as the floor
no renderer can beat. Values cycle through ``--contacts`` distinct sets, as a campaign's would.
Each figure is the median over the rounds. A human-readable table goes to stderr; the last line on
stdout is one JSON object with the three figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._timing import timed  # noqa: E402

from templates_catalog.render import render  # noqa: E402

DEFINITION = {
    "name": "order_shipped",
    "language": "es_MX",
    "category": "UTILITY",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "BODY",
         "text": "Hola {{1}}, tu pedido {{2}} de {{3}} por {{4}} sale hoy y llega el {{5}}. "
                 "Puedes seguirlo con el botón de abajo. ¡Gracias por tu compra!",
         "example": {"body_text": [["Ana", "A-1001", "Tienda Centro", "$1,299.00", "lunes 3 de marzo"]]}},
        {"type": "FOOTER", "text": "Responde STOP para no recibir avisos"},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "Seguir pedido", "url": "https://shop.example.com/orders/{{1}}",
             "example": ["https://shop.example.com/orders/A-1001"]},
            {"type": "QUICK_REPLY", "text": "Hablar con alguien"}]},
    ],
}
BODY_FORMAT = ("Hola {0}, tu pedido {1} de {2} por {3} sale hoy y llega el {4}. "
               "Puedes seguirlo con el botón de abajo. ¡Gracias por tu compra!")
NAMES = ["Ana María", "José", "Lucía Fernández", "Carlos", "María José", "Pedro Luis", "Sofía", "Diego"]
STORES = ["Tienda Centro", "Sucursal Norte", "Tienda en línea"]
DAYS = ["lunes 3 de marzo", "martes 4 de marzo", "miércoles 5 de marzo", "jueves 6 de marzo"]


def _values(i: int) -> dict:
    order = f"A-{100000 + i}"
    return {"body": [NAMES[i % len(NAMES)], order, STORES[i % len(STORES)], f"${(i % 5000) + 99:,}.00 MXN",
                     DAYS[i % len(DAYS)]],
            "buttons": [{"index": 0, "sub_type": "url", "parameters": [order]}]}


_timed = timed


# The three loops share one shape (iterate a prebuilt list of length n) so that harness overhead is
# the same on every side of the comparison.

def _render(definition: dict, inputs: list) -> None:
    for values in inputs:
        render(definition, values)


def _dumps(objects: list) -> None:
    dumps = json.dumps
    for obj in objects:
        dumps(obj)


def _format(bodies: list) -> None:
    fmt = BODY_FORMAT.format
    for body in bodies:
        fmt(*body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds of 20k renders instead of 5 rounds of 100k")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--ops", type=int, help="override the renders per measurement")
    parser.add_argument("--contacts", type=int, default=4096,
                        help="distinct value sets cycled through (default 4096)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    ops = args.ops or (20_000 if args.quick else 100_000)
    distinct = max(1, min(args.contacts, ops))

    contacts = [_values(i) for i in range(distinct)]
    inputs = [contacts[i % distinct] for i in range(ops)]
    rendered = [render(DEFINITION, values).cloud_api for values in contacts]
    objects = [rendered[i % distinct] for i in range(ops)]
    bodies = [values["body"] for values in inputs]

    # Sanity: the render is the one the campaign needs before we time it.
    first = render(DEFINITION, inputs[0])
    assert first.cloud_api["components"][1]["parameters"] == [{"type": "text", "text": "A-100000"}]
    assert first.text.startswith(BODY_FORMAT.format(*bodies[0]))
    assert "Seguir pedido: https://shop.example.com/orders/A-100000" in first.sms_text

    warm = min(ops, 5_000)
    _render(DEFINITION, inputs[:warm])
    _dumps(objects[:warm])
    _format(bodies[:warm])

    samples: dict[str, list[float]] = {"render": [], "dumps": [], "format": []}
    jobs = {"render": (_render, DEFINITION, inputs), "dumps": (_dumps, objects), "format": (_format, bodies)}
    forward, backward = ["render", "dumps", "format"], ["format", "dumps", "render"]
    started = time.perf_counter()
    for rnd in range(rounds):
        # Alternate which side goes first so drift (thermal, turbo, a noisy neighbour) cancels out.
        for name in (forward if rnd % 2 == 0 else backward):
            fn, *fargs = jobs[name]
            samples[name].append(ops / _timed(fn, *fargs))
            print(f"round {rnd + 1}/{rounds} {name}: {samples[name][-1]:,.0f}/s", file=sys.stderr)
    elapsed = time.perf_counter() - started

    med = {name: statistics.median(vals) for name, vals in samples.items()}
    result = {
        "renders_per_s": int(med["render"]),
        "reference_per_s": int(med["dumps"]),
        "ratio": round(med["render"] / med["dumps"], 3),
    }

    err = sys.stderr
    print(f"templates_catalog.render benchmark: 5 body parameters + URL suffix, {rounds} rounds x "
          f"{ops:,} renders over {distinct:,} contacts, medians ({elapsed:.1f}s timed)", file=err)
    print(f"{'':34}{'ops/s':>12}   per round", file=err)
    for label, name in (("render (all three views)", "render"), ("json.dumps of the result (reference)", "dumps"),
                        ("str.format of the bare body (floor)", "format")):
        per_round = " ".join(f"{v / 1e3:.0f}k" for v in samples[name])
        print(f"{label:34}{med[name]:>12,.0f}   {per_round}", file=err)
    print(f"ratio render / json.dumps: {result['ratio']:.3f}; "
          f"render costs {med['format'] / med['render']:.1f}x the bare str.format", file=err)
    err.flush()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

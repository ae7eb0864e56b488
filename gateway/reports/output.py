"""A report as CSV (the API's ``format=csv``) and as an aligned text table (the CLI)."""
from __future__ import annotations

import csv
import io
from typing import NamedTuple


class Figure(NamedTuple):
    name: str
    header: str     # the table's column heading
    kind: str       # count | seconds | share | score | points


FIGURES = (
    Figure("inbound_messages", "inbound", "count"),
    Figure("conversations", "convs", "count"),
    Figure("first_response_median_s", "FRT p50", "seconds"),
    Figure("first_response_p90_s", "FRT p90", "seconds"),
    Figure("first_response_any_median_s", "FRT+bot p50", "seconds"),
    Figure("first_response_any_p90_s", "FRT+bot p90", "seconds"),
    Figure("service_level", "SL", "share"),
    Figure("resolved", "resolved", "count"),
    Figure("resolution_median_s", "res p50", "seconds"),
    Figure("resolution_p90_s", "res p90", "seconds"),
    Figure("fcr_rate", "FCR", "share"),
    Figure("fcr_pending", "FCR pend", "count"),
    Figure("reopen_rate", "reopen", "share"),
    Figure("containment_rate", "contain", "share"),
    Figure("csat_responses", "CSAT n", "count"),
    Figure("csat_average", "CSAT", "score"),
    Figure("csat_satisfied_share", "CSAT 4-5", "share"),
    Figure("nps_responses", "NPS n", "count"),
    Figure("nps", "NPS", "points"),
    Figure("ces_responses", "CES n", "count"),
    Figure("ces_average", "CES", "score"),
    Figure("out_of_hours_reply_share", "OOH replies", "share"),
    Figure("out_of_hours_inbound_share", "OOH inbound", "share"),
)


def _rows(report: dict):
    yield from report["groups"]
    yield {"group": "total", "label": "total", **report["total"]}


def to_csv(report: dict) -> str:
    """One line per group and a last ``total`` line; shares as fractions (0.8), times in seconds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "label", *(f.name for f in FIGURES)])
    for row in _rows(report):
        w.writerow(["" if row["group"] is None else row["group"], row["label"],
                    *("" if row[f.name] is None else row[f.name] for f in FIGURES)])
    return buf.getvalue()


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s" if s < 10 and s != int(s) else f"{s:.0f}s"
    if s < 3600:
        m, sec = divmod(round(s), 60)
        return f"{m}m{sec:02d}s"
    if s < 48 * 3600:
        h, m = divmod(round(s / 60), 60)
        return f"{h}h{m:02d}m"
    return f"{s / 86400:.1f}d"


def cell(kind: str, value) -> str:
    if value is None:
        return "-"
    if kind == "count":
        return f"{value:,}"
    if kind == "seconds":
        return _duration(value)
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "points":
        return f"{value:+.1f}"
    return f"{value:.2f}"


def to_table(report: dict) -> str:
    """An aligned table: a line per group, a line for the total, a column per figure; '-' where a figure has
    nothing to be computed from. Durations as 45s / 1m45s / 6h48m / 3.0d, shares as percentages."""
    heads = [report["group_by"], *(f.header for f in FIGURES)]
    lines = [[row["label"], *(cell(f.kind, row[f.name]) for f in FIGURES)] for row in _rows(report)]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(heads)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [fmt(line) for line in lines]
    title = (f"{report['from']} to {report['to']} ({report['timezone']}), by {report['group_by']}; "
             f"FCR window {report['fcr_days']} days, service-level target {report['sla_seconds']} s"
             + ("" if report["business_hours"] else "; no business hours defined"))
    return "\n".join([title, fmt(heads), rule, *body[:-1], rule, body[-1]]) + "\n"

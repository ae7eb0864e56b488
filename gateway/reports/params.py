"""A report's parameters, from the API's query string or the command line, checked once for both.

Every problem is listed with the parameter it is about and how to fix it: 400 when a value cannot be read
(not a date, not a number, missing, unknown name), 422 when it can but makes no sense (``to`` before
``from``, a range over a year, a grouping that does not exist).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

GROUPINGS = ("day", "week", "channel", "team", "agent")
FORMATS = ("json", "csv")
DEFAULT_FCR_DAYS = 7
DEFAULT_SLA_SECONDS = 60
MAX_DAYS = 366
FCR_DAYS = (1, 90)
SLA_SECONDS = (1, 7 * 86400)
NAMES = ("from", "to", "group_by", "fcr_days", "sla_seconds", "format")


class ParamsError(Exception):
    def __init__(self, status: int, errors: list[dict]):
        super().__init__(f"{len(errors)} report parameter(s) to fix: "
                         + "; ".join(f"{e['parameter']}: {e['detail']}" for e in errors))
        self.status, self.errors = status, errors


@dataclass(frozen=True)
class Params:
    start: date                 # first day, in the account's time zone
    end: date                   # last day (inclusive)
    group_by: str = "day"
    fcr_days: int | None = None     # None: the account's setting, else the default
    sla_seconds: int | None = None
    format: str = "json"


def parse(args, *, prefix: str = "") -> Params:
    """``args``: a mapping of parameter name → text (a query string; the CLI passes its options the same way).
    ``prefix`` names the parameters in the errors (``?`` for the API, ``--`` for the CLI)."""
    syntax: list[dict] = []
    semantic: list[dict] = []

    def bad(errors, name, detail):
        cli = prefix == "--"
        errors.append({"parameter": f"{prefix}{name.replace('_', '-') if cli else name}", "detail": detail})

    for name in args:
        if name not in NAMES:
            bad(syntax, name, f"unknown parameter; the parameters are {', '.join(NAMES)}")

    def day(name):
        raw = args.get(name)
        if raw is None or str(raw).strip() == "":
            bad(syntax, name, "required: a date YYYY-MM-DD in the account's time zone (e.g. 2026-11-01)")
            return None
        try:
            return date.fromisoformat(str(raw).strip())
        except ValueError:
            bad(syntax, name, f"{raw!r} is not a date; write YYYY-MM-DD (e.g. 2026-11-01)")
            return None

    def number(name, lo, hi, unit):
        raw = args.get(name)
        if raw is None or str(raw).strip() == "":
            return None
        try:
            value = int(str(raw).strip())
        except ValueError:
            bad(syntax, name, f"{raw!r} is not a whole number of {unit} ({lo} to {hi})")
            return None
        if not lo <= value <= hi:
            bad(semantic, name, f"must be from {lo} to {hi} {unit}, not {value}")
            return None
        return value

    start, end = day("from"), day("to")
    if start and end:
        if end < start:
            bad(semantic, "to", f"is before from ({start}); give the last day of the range, on or after the first")
        elif (end - start).days + 1 > MAX_DAYS:
            bad(semantic, "to", f"the range is {(end - start).days + 1} days; at most {MAX_DAYS}: split it")
    group_by = str(args.get("group_by") or "day").strip()
    if group_by not in GROUPINGS:
        bad(semantic, "group_by", f"{group_by!r} is not a grouping; use one of {', '.join(GROUPINGS)}")
    fcr_days = number("fcr_days", *FCR_DAYS, "days")
    sla_seconds = number("sla_seconds", *SLA_SECONDS, "seconds")
    fmt = str(args.get("format") or "json").strip()
    if fmt not in FORMATS:
        bad(semantic, "format", f"{fmt!r} is not a format; use json (default) or csv")
    if syntax or semantic:
        raise ParamsError(400 if syntax else 422, syntax + semantic)
    return Params(start=start, end=end, group_by=group_by, fcr_days=fcr_days, sla_seconds=sla_seconds, format=fmt)

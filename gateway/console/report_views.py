"""Console pages: the contact-center report (GET /v1/reports/summary) for a date range, per day as line charts
and per channel, team and agent as tables and bar charts, with its CSV download."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, render_template, request

from gateway.console import api_client, auth
from gateway.console.blueprint import bp, error_page
from gateway.console.charts import bar_chart, line_chart
from gateway.reports.output import cell

DEFAULT_DAYS = 7
DIMENSIONS = (("channel", "Channel"), ("team", "Team"), ("agent", "Agent"))
FIELDS = ("from", "to", "sla_seconds", "fcr_days")   # the form's inputs, named as the API's parameters
MOST_BARS = 12
# The columns of each table: (figure, heading, kind for formatting as the CLI does).
COLUMNS = (
    ("conversations", "Conversations", "count"), ("inbound_messages", "Inbound", "count"),
    ("first_response_median_s", "First response p50", "seconds"),
    ("first_response_p90_s", "First response p90", "seconds"),
    ("service_level", "Service level", "share"), ("resolved", "Resolved", "count"),
    ("resolution_median_s", "Resolution p50", "seconds"), ("fcr_rate", "FCR", "share"),
    ("csat_average", "CSAT", "score"), ("nps", "NPS", "points"), ("ces_average", "CES", "score"),
)


def _today() -> date:
    # "The last 7 days" are the account's days, as the report's are.
    reply = api_client.get("/v1/account")
    try:
        zone = ZoneInfo((reply.body or {}).get("timezone") or "UTC") if reply.ok else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.now(zone).date()


def _params() -> dict:
    """The range and options asked for; without a range, the last seven days (today included)."""
    values = {name: (request.args.get(name) or "").strip() for name in FIELDS}
    if not values["from"] and not values["to"]:
        today = _today()
        values["from"], values["to"] = (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), today.isoformat()
    return values


def _errors(reply) -> dict[str, str]:
    """The API's parameter problems (pointers ``?from``…) by form field."""
    out: dict[str, str] = {}
    for err in (reply.body or {}).get("errors") or []:
        name = str(err.get("pointer") or "").lstrip("?/")
        name = name if name in FIELDS else "_form"
        out[name] = f"{out[name]} {err.get('detail')}" if name in out else str(err.get("detail"))
    return out or {"_form": reply.detail}


def _durations(*columns: list) -> tuple[str, list[list]]:
    """Durations (seconds, None for none) in the unit that suits their largest: seconds, minutes or hours, so
    a 0.8 s first response is not drawn as 0.0 minutes."""
    peak = max((v for column in columns for v in column if v is not None), default=0)
    size, unit = (1, "seconds") if peak < 120 else (60, "minutes") if peak < 7200 else (3600, "hours")
    return unit, [[None if v is None else round(v / size, 1) for v in column] for column in columns]


def _day_charts(report: dict) -> list:
    labels = [g["label"][5:] for g in report["groups"]]   # MM-DD: the year is in the range above
    rows = report["groups"]
    unit, (first, resolution) = _durations([g["first_response_median_s"] for g in rows],
                                           [g["resolution_median_s"] for g in rows])
    return [
        line_chart(title="Conversations per day", labels=labels, y_label="count",
                   series=[("inbound messages", [g["inbound_messages"] for g in rows]),
                           ("conversations", [g["conversations"] for g in rows]),
                           ("resolved", [g["resolved"] for g in rows])]),
        line_chart(title=f"First response and resolution per day (median, {unit})", labels=labels,
                   y_label=unit, series=[("first response", first), ("resolution", resolution)]),
    ]


def _dimension_charts(title: str, groups: list[dict]) -> list:
    # Only groups with something to show, the busiest first: an idle agent is a row in the table, not a bar.
    busy = sorted((g for g in groups if g["conversations"] or g["resolved"] or g["inbound_messages"]),
                  key=lambda g: -(g["conversations"] + g["resolved"]))[:MOST_BARS]
    if not busy:
        return []
    labels = [g["label"] for g in busy]
    unit, (first,) = _durations([g["first_response_median_s"] for g in busy])
    return [
        bar_chart(title=f"Conversations and resolutions by {title.lower()}", labels=labels, horizontal=True,
                  series=[("conversations", [g["conversations"] for g in busy]),
                          ("resolved", [g["resolved"] for g in busy])], y_label="count"),
        bar_chart(title=f"Median first response by {title.lower()} ({unit})", labels=labels, horizontal=True,
                  series=[("first response", first)], y_label=unit),
    ]


@bp.get("/reports")
@auth.page("supervisor")
def reports():
    params = _params()
    by_day = api_client.get("/v1/reports/summary", group_by="day", **params)
    if by_day.status in (400, 422):
        return render_template("console/reports.html", params=params, errors=_errors(by_day)), by_day.status
    if not by_day.ok:
        return error_page(by_day.status, "That did not work", by_day.detail)
    report = by_day.body
    sections = []
    for group_by, title in DIMENSIONS:
        reply = api_client.get("/v1/reports/summary", group_by=group_by, **params)
        sections.append({"group_by": group_by, "title": title, "groups": reply.body["groups"] if reply.ok else [],
                         "error": None if reply.ok else reply.detail,
                         "charts": _dimension_charts(title, reply.body["groups"]) if reply.ok else []})
    return render_template("console/reports.html", params=params, errors={}, report=report, total=report["total"],
                           day_charts=_day_charts(report), sections=sections, columns=COLUMNS, cell=cell,
                           query={k: v for k, v in params.items() if v})


@bp.get("/reports.csv")
@auth.page("supervisor")
def reports_csv():
    """The report as the API's CSV (every figure), grouped as asked."""
    params = _params()
    group_by = request.args.get("group_by") or "day"
    reply = api_client.get("/v1/reports/summary", group_by=group_by, format="csv", **params)
    if reply.status in (400, 422):
        return render_template("console/reports.html", params=params, errors=_errors(reply)), reply.status
    if not reply.ok:
        return error_page(reply.status, "That did not work", reply.detail)
    return Response(reply.raw, mimetype="text/csv", headers={
        "Content-Disposition": reply.headers.get("Content-Disposition")
        or f'attachment; filename="report-{group_by}.csv"'})

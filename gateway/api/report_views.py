"""Contact-center reports: GET /v1/reports/summary (JSON, or CSV with format=csv). See gateway/reports."""
from __future__ import annotations

from flask import Response, request

from gateway import reports
from gateway.api.views import bp
from gateway.http import api
from gateway.problems import Problem


@bp.get("/reports/summary")
@api(scope="messages:read")
def report_summary(conn, principal):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive, the account's time zone)&group_by=day|week|channel|team|agent
    &fcr_days=&sla_seconds=&format=json|csv. Aggregates only: no personal data (no read audit row)."""
    try:
        params = reports.parse(request.args, prefix="?")
        report = reports.summary(conn, account_id=principal.account_id, params=params, parallel=True)
    except reports.ParamsError as exc:
        raise Problem(exc.status, "Bad Report Parameters" if exc.status == 400 else "Invalid Report Parameters",
                      f"{len(exc.errors)} parameter(s) to fix: " + "; ".join(
                          f"{e['parameter']}: {e['detail']}" for e in exc.errors),
                      slug="report-parameters",
                      errors=[{"pointer": e["parameter"], "detail": e["detail"]} for e in exc.errors]) from None
    if params.format == "csv":
        name = f"report-{params.group_by}-{params.start}-{params.end}.csv"
        return Response(reports.to_csv(report), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return report

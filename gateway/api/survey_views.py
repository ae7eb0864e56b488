"""REST views for thread status changes (resolving starts a survey) and CSAT / NPS / CES surveys."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import g, request

from gateway import outbound, surveys, thread_status
from gateway.accounts import audit
from gateway.api import paging
from gateway.api.views import bp
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem, invalid



def _time(value, pointer: str, errors: list[dict]) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError
        return at
    except ValueError:
        errors.append({"pointer": pointer, "detail": "an ISO 8601 time with its offset, e.g. 2026-03-01T10:15:00Z"})
        return None


@bp.post("/threads/<thread_id>/status")
@api(scope="messages:send")
def set_thread_status(conn, principal, thread_id):
    """{status: open|pending|snoozed|resolved, snooze_until?}; resolving sends the account's survey."""
    doc = json_object()
    errors: list[dict] = []
    for name in doc:
        if name not in ("status", "snooze_until", "agent"):
            errors.append({"pointer": f"/{name}", "detail": "unknown field; the fields are status, snooze_until, "
                                                            "agent"})
    status = doc.get("status")
    if status not in thread_status.STATUSES:
        errors.append({"pointer": "/status", "detail": f"required: one of {', '.join(thread_status.STATUSES)}"})
    until = None
    if doc.get("snooze_until") is not None:
        until = _time(doc["snooze_until"], "/snooze_until", errors)
        if status != "snoozed":
            errors.append({"pointer": "/snooze_until", "detail": "only with status snoozed"})
        elif until is not None and until <= datetime.now(timezone.utc):
            errors.append({"pointer": "/snooze_until", "detail": "must be in the future"})
    elif status == "snoozed":
        errors.append({"pointer": "/snooze_until", "detail": "required with snoozed: when the thread opens again"})
    agent = doc.get("agent")
    if agent is not None and (not isinstance(agent, str) or not agent.strip() or len(agent) > 200):
        errors.append({"pointer": "/agent", "detail": "the CRM's id of the person making the change (text)"})
    if errors:
        raise invalid(errors)
    try:
        result = thread_status.set_status(conn, account_id=principal.account_id,
                                          thread_id=parse_uuid(thread_id, "thread"), status=status,
                                          snooze_until=until, actor=principal.actor, agent=agent)
    except thread_status.TransitionRefused as exc:
        raise Problem(409, "Transition Not Allowed", f"{exc}; not {status}", slug="thread-transition",
                      extra={"current_status": exc.current, "allowed": list(exc.allowed)}) from None
    if result is None:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    conn.commit()
    survey = result["survey"]
    if survey is not None and survey["state"] == "sent":
        outbound.enqueue(principal.account_id, survey["message_id"])
    t = result["thread"]
    return {"id": t["id"], "status": t["status"], "previous_status": result["previous"], "changed": result["changed"],
            "resolved_at": t["resolved_at"], "snoozed_until": t["snoozed_until"], "reopened_at": t["reopened_at"],
            "survey": None if survey is None else {k: survey[k] for k in (
                "id", "kind", "state", "skip_reason", "message_id", "sent_at", "expires_at")}}


@bp.get("/threads/<thread_id>/surveys")
@api(scope="messages:read")
def thread_surveys(conn, principal, thread_id):
    """The survey requests of one thread, oldest first: sent, skipped (with the gate's rule) or answered."""
    return {"data": surveys.requests_of_thread(conn, account_id=principal.account_id,
                                               thread_id=parse_uuid(thread_id, "thread"))}


@bp.get("/surveys/responses")
@api(scope="messages:read")
def list_survey_responses(conn, principal):
    args = request.args
    errors: list[dict] = []
    filters = {}
    for name in ("thread_id", "channel_id"):
        if args.get(name):
            try:
                filters[name] = parse_uuid(args[name], name[:-3])
            except Problem:
                errors.append({"pointer": f"?{name}", "detail": "an id"})
    if args.get("kind"):
        if args["kind"] not in surveys.SCALES:
            errors.append({"pointer": "?kind", "detail": "csat, nps or ces"})
        filters["kind"] = args["kind"]
    if args.get("since"):
        filters["since"] = _time(args["since"], "?since", errors)
    if errors:
        raise invalid(errors)
    limit = paging.limit()
    rows = surveys.list_responses(conn, account_id=principal.account_id, limit=limit, before=paging.decode("before"),
                                  **filters)
    # The comments are the customers' words: the read leaves its audit row like any read of personal data.
    audit(conn, account_id=principal.account_id, actor=principal.actor, action="read:/v1/surveys/responses",
          target_type="survey_response", detail={k: str(v) for k, v in filters.items() if k != "since"}
          | {"returned": len(rows)})
    g.audit_recorded = True
    return {"data": rows,
            "next": paging.encode(rows[-1]["answered_at"], rows[-1]["id"]) if len(rows) == limit else None}


def _config_view(row: dict | None) -> dict:
    if row is None:
        return {"configured": False, "enabled": False}
    return dict(row, configured=True)


@bp.get("/surveys/config")
@api(scope="admin")
def get_survey_config(conn, principal):
    return _config_view(surveys.get_settings(conn, account_id=principal.account_id))


@bp.put("/surveys/config")
@api(scope="admin")
def put_survey_config(conn, principal):
    """The whole configuration: {kind: csat|nps|ces, questions: {lang: text}, follow_up?: {lang: text},
    expiry_hours?: 1-720 (72), enabled?: true}."""
    doc = json_object()
    errors = surveys.validate_settings(doc)
    if errors:
        raise invalid(errors)
    return _config_view(surveys.save_settings(conn, account_id=principal.account_id, doc=doc, actor=principal.actor))

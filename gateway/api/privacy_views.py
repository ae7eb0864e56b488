"""REST views for data-subject access (a contact's export) and the audit log."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, g, request

from gateway import audit, export
from gateway.api import paging
from gateway.api.views import bp
from gateway.http import api, parse_uuid
from gateway.problems import Problem


@bp.get("/contacts/<contact_id>/export")
@api(scope="contacts:read")
def export_contact(conn, principal, contact_id):
    """Everything held about the contact (and contacts merged into it), decrypted, as one JSON document."""
    subject = export.find(conn, account_id=principal.account_id, contact_id=parse_uuid(contact_id, "contact"))
    if subject is None:
        # Another account's contact answers exactly like an unknown one: existence is not revealed.
        raise Problem(404, "Not Found", f"no contact with id {contact_id} in this account")
    # Built as text inside the request's transaction, so a failure still answers with a problem; the pieces
    # keep a long history from being held as Python objects (`gateway contacts export` streams to a file).
    body = "".join(export.chunks(conn, subject))
    export.record(conn, subject=subject, actor=principal.actor, via="api")
    g.audit_recorded = True   # the export's own row stands for this read
    return Response(body, 200, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="contact-{subject.contact["id"]}.json"',
        "Cache-Control": "no-store"})


def _time(name: str):
    value = request.args.get(name)
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(400, "Bad Filter", f"{name} must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z",
                      slug="bad-filter") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@bp.get("/audit")
@api(scope="admin")
def list_audit(conn, principal):
    """The account's audit log, newest first: who (API key) did or read what, and when."""
    limit = paging.limit()
    args = request.args
    rows = audit.list_entries(conn, account_id=principal.account_id, action=args.get("action"),
                              actor=args.get("actor"), target_type=args.get("target_type"),
                              target_id=args.get("target_id"), since=_time("since"), until=_time("until"),
                              limit=limit, before=paging.decode("before"))
    return {"data": rows, "next": paging.encode(rows[-1]["at"], rows[-1]["id"]) if len(rows) == limit else None}

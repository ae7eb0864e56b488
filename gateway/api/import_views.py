"""Contact imports over REST: POST /v1/contacts/import (a CSV file), GET /v1/contacts/imports[/{id}]."""
from __future__ import annotations

import io

from flask import request
from werkzeug.formparser import parse_form_data

from gateway import contact_import
from gateway.api import paging
from gateway.api.views import bp
from gateway.http import api, parse_uuid
from gateway.problems import Problem

# The file itself (a raw body) or a multipart form with a 'file' part; browsers label CSV files as Excel's.
_RAW_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream", "application/vnd.ms-excel")
_HOW = ("send the CSV file as the body with Content-Type: text/csv (curl --data-binary @contacts.csv -H "
        "'Content-Type: text/csv'), or as the 'file' part of a multipart form (curl -F file=@contacts.csv)")


def _in_memory(total_content_length, content_type, filename, content_length=None):
    # The file is personal data: kept in memory (bounded by the size limit), never spooled to disk in clear.
    return io.BytesIO()


def _file() -> tuple[bytes, str | None]:
    if request.mimetype == "multipart/form-data":
        _, _, files = parse_form_data(request.environ, stream_factory=_in_memory,
                                      max_content_length=request.max_content_length,
                                      max_form_memory_size=request.max_form_memory_size,
                                      max_form_parts=request.max_form_parts)
        part = files.get("file")
        if part is None:
            raise Problem(422, "Validation Failed", "the form has no 'file' part; " + _HOW, slug="validation-failed",
                          errors=[{"pointer": "/file", "detail": "missing file part"}])
        return part.read(), part.filename or None
    if request.mimetype not in _RAW_TYPES:
        raise Problem(415, "Unsupported Media Type", _HOW)
    return request.get_data(cache=False), None


@bp.post("/contacts/import")
@api(scope="contacts:write")
def import_contacts(conn, principal):
    """Import contacts from a CSV file (see gateway/contact_import.py for the columns): 201 with the summary,
    each bad line listed with its number and reason; 422 when nothing could be imported."""
    try:
        region = contact_import.valid_region(request.args.get("default_region"))
    except ValueError as exc:
        raise Problem(422, "Validation Failed", str(exc), slug="validation-failed",
                      errors=[{"pointer": "/default_region", "detail": str(exc)}]) from None
    data, filename = _file()
    filename = request.args.get("filename") or filename
    if not data:
        raise Problem(422, "Import Rejected", "the file is empty; " + _HOW, slug="import-rejected",
                      errors=[{"line": 1, "reason": "empty file"}])
    try:
        summary = contact_import.run(conn, account_id=principal.account_id, data=data, default_region=region,
                                     filename=filename[:200] if filename else None, actor=principal.actor)
    except contact_import.ImportRejected as exc:
        title = "Payload Too Large" if exc.status == 413 else "Import Rejected"
        raise Problem(exc.status, title, exc.detail, slug="import-rejected", errors=exc.errors,
                      extra=exc.counts) from None
    return summary, 201, {"Location": f"/v1/contacts/imports/{summary['import_id']}"}


import_contacts.max_request_bytes = contact_import.MAX_BYTES + 64 * 1024   # read by the app's body-size check


@bp.get("/contacts/imports")
@api(scope="contacts:read")
def list_imports(conn, principal):
    limit = paging.limit()
    rows = contact_import.list_imports(conn, account_id=principal.account_id, limit=limit,
                                       before=paging.decode("before"))
    return {"data": rows, "next": paging.encode(rows[-1]["created_at"], rows[-1]["import_id"])
            if len(rows) == limit else None}


@bp.get("/contacts/imports/<import_id>")
@api(scope="contacts:read")
def get_import(conn, principal, import_id):
    found = contact_import.get_import(conn, account_id=principal.account_id,
                                      import_id=parse_uuid(import_id, "contact import"))
    if found is None:
        raise Problem(404, "Not Found", f"no contact import with id {import_id} in this account")
    return found

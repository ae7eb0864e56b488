"""REST views for the level-1 assistant: the knowledge base (CRUD, import), its threshold, and /ask to try
it before going live. Entries are business content, not personal data: reads are not audited."""
from __future__ import annotations

import math

from flask import request

from gateway import assistant
from gateway.api import paging
from gateway.api.views import bp
from gateway.assistant import kb, retrieve
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem, problem_response


def _view(row: dict) -> dict:
    return {"id": row["id"], "language": row["language"], "question": row["question"], "answer": row["answer"],
            "tags": row["tags"], "phrasings": row["phrasings"], "enabled": row["enabled"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}



def _invalid(exc: kb.EntryInvalid) -> Problem:
    return Problem(422, "Validation Failed", f"{len(exc.errors)} problem(s) with the entry: see errors",
                   slug="validation-failed", errors=exc.errors)


def _entry_id(value: str):
    return parse_uuid(value, "knowledge-base entry")


@bp.get("/knowledge-base")
@api(scope="messages:read")
def list_kb(conn, principal):
    limit = paging.limit()
    rows = kb.list_entries(conn, account_id=principal.account_id, language=request.args.get("language") or None,
                           after=paging.decode("after"), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [_view(r) for r in rows],
            "next": paging.encode(rows[-1]["created_at"], rows[-1]["id"]) if more else None}


@bp.post("/knowledge-base")
@api(scope="admin")
def create_kb(conn, principal):
    try:
        row = kb.create_entry(conn, account_id=principal.account_id, entry=json_object())
    except kb.EntryInvalid as exc:
        raise _invalid(exc) from None
    retrieve.invalidate(principal.account_id)
    return _view(row), 201


@bp.get("/knowledge-base/<entry_id>")
@api(scope="messages:read")
def get_kb(conn, principal, entry_id):
    row = kb.get_entry(conn, account_id=principal.account_id, entry_id=_entry_id(entry_id))
    if row is None:
        raise Problem(404, "Not Found", f"no knowledge-base entry with id {entry_id} in this account")
    return _view(row)


@bp.put("/knowledge-base/<entry_id>")
@api(scope="admin")
def update_kb(conn, principal, entry_id):
    """Replace the fields given (language, question, answer, tags, phrasings, enabled); others stay."""
    try:
        row = kb.update_entry(conn, account_id=principal.account_id, entry_id=_entry_id(entry_id),
                              changes=json_object())
    except kb.EntryInvalid as exc:
        raise _invalid(exc) from None
    if row is None:
        raise Problem(404, "Not Found", f"no knowledge-base entry with id {entry_id} in this account")
    retrieve.invalidate(principal.account_id)
    return _view(row)


@bp.delete("/knowledge-base/<entry_id>")
@api(scope="admin")
def delete_kb(conn, principal, entry_id):
    if not kb.delete_entry(conn, account_id=principal.account_id, entry_id=_entry_id(entry_id)):
        raise Problem(404, "Not Found", f"no knowledge-base entry with id {entry_id} in this account")
    retrieve.invalidate(principal.account_id)
    return "", 204


def _import_format() -> str:
    fmt = (request.args.get("format") or "").lower()
    if not fmt:
        mime = request.mimetype or ""
        fmt = "csv" if mime in ("text/csv", "application/csv") else (
            "yaml" if mime in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml") else "")
    if fmt not in ("csv", "yaml"):
        raise Problem(415, "Unsupported Media Type", "send CSV (Content-Type: text/csv) or YAML "
                      "(Content-Type: application/yaml), or say ?format=csv|yaml", slug="bad-import-format")
    return fmt


@bp.post("/knowledge-base/import")
@api(scope="admin")
def import_kb(conn, principal):
    """Import every good row; a 422 lists each bad row by line number, the good ones being imported all
    the same (so a 500-row file with one typo is fixed by re-sending that one row)."""
    fmt = _import_format()
    try:
        body = request.get_data(cache=False).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(400, "Bad Encoding", "the file must be UTF-8", slug="bad-encoding") from None
    result = kb.import_entries(conn, account_id=principal.account_id, body=body, fmt=fmt,
                               default_language=request.args.get("language") or None)
    retrieve.invalidate(principal.account_id)
    ids = [r["id"] for r in result["imported"]]
    if result["problems"]:
        return problem_response(422, "Rows Rejected", f"{len(result['problems'])} row(s) rejected and "
                                f"{len(ids)} imported: see errors for each rejected line",
                                slug="import-rows-rejected", errors=result["problems"],
                                extra={"imported": len(ids), "ids": [str(i) for i in ids]})
    return {"imported": len(ids), "ids": ids}, 201


@bp.get("/knowledge-base/settings")
@api(scope="messages:read")
def get_kb_settings(conn, principal):
    threshold = kb.get_threshold(conn, account_id=principal.account_id)
    return {"threshold": threshold, "effective_threshold": assistant.DEFAULT_THRESHOLD if threshold is None
            else threshold, "default_threshold": assistant.DEFAULT_THRESHOLD}


@bp.put("/knowledge-base/settings")
@api(scope="admin")
def put_kb_settings(conn, principal):
    """{"threshold": 0..1 or null for the default}: answers below it are handed off."""
    value = json_object().get("threshold")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or not 0 <= value <= 1):
        raise Problem(422, "Validation Failed", "threshold is a number from 0 to 1, or null for the default",
                      slug="validation-failed", errors=[{"pointer": "/threshold", "detail": "a number from 0 to 1"}])
    kb.set_threshold(conn, account_id=principal.account_id, threshold=None if value is None else float(value))
    retrieve.invalidate(principal.account_id)
    return {"threshold": value, "effective_threshold": assistant.DEFAULT_THRESHOLD if value is None else value,
            "default_threshold": assistant.DEFAULT_THRESHOLD}


@bp.post("/knowledge-base/ask")
@api(scope="messages:read")
def ask_kb(conn, principal):
    """What the assistant would answer to a customer's text, with the LLM if one is configured."""
    doc = json_object()
    text, language = doc.get("text"), doc.get("language")
    errors = []
    if not isinstance(text, str) or not text.strip() or len(text) > 4096:
        errors.append({"pointer": "/text", "detail": "a non-empty string of at most 4096 characters"})
    if language is not None and not isinstance(language, str):
        errors.append({"pointer": "/language", "detail": "a language code such as 'en' or 'es', or leave it out"})
    if errors:
        raise Problem(422, "Validation Failed", "see errors", slug="validation-failed", errors=errors)
    decision = assistant.decide(conn, account_id=principal.account_id, text=text, language=language)
    if decision.answer is None:
        return {"handoff": True, "best_score": round(decision.best.score, 4) if decision.best else 0.0,
                "best_entry_id": decision.best.entry_id if decision.best else None,
                "threshold": decision.threshold}
    a = decision.answer
    return {"handoff": False, "text": a.text, "entry_id": a.entry_id, "score": a.score, "source": a.source,
            "threshold": decision.threshold}

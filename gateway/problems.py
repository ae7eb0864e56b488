"""RFC 9457 problem details: every error the API returns has this shape."""
from __future__ import annotations

import json

from flask import Response, g

PROBLEM_BASE = "https://gateway.invalid/problems/"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str, *, slug: str | None = None,
                 errors: list[dict] | None = None, headers: dict | None = None, extra: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.slug = slug or title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}   # RFC 9457 extension members, e.g. window_closed_at

    def response(self) -> Response:
        return problem_response(self.status, self.title, self.detail, slug=self.slug,
                                errors=self.errors, headers=self.headers, extra=self.extra)


def invalid(errors: list[dict]) -> Problem:
    """422 listing every invalid field (``errors``: pointer/field and detail each), the API's one form of it."""
    return Problem(422, "Validation Failed", f"{len(errors)} field(s) are invalid: see errors for each field and how "
                   "to fix it", slug="validation-failed", errors=errors)


def problem_document(status: int, title: str, detail: str, *, slug: str | None = None,
                     errors: list[dict] | None = None, request_id: str | None = None,
                     extra: dict | None = None) -> dict:
    body = {
        "type": PROBLEM_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    for name, value in (extra or {}).items():
        body.setdefault(name, value)
    return body


def problem_response(status: int, title: str, detail: str, *, slug: str | None = None,
                     errors: list[dict] | None = None, headers: dict | None = None,
                     extra: dict | None = None) -> Response:
    body = problem_document(status, title, detail, slug=slug, errors=errors,
                            request_id=getattr(g, "request_id", None), extra=extra)
    resp = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def field_errors(messages, prefix: str = "") -> list[dict]:
    """Flatten marshmallow's nested error dict into [{pointer, detail}] (JSON Pointer per field)."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.extend(field_errors(value, f"{prefix}/{key}"))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        for message in messages:
            out.append({"pointer": prefix or "/", "detail": message})
    elif isinstance(messages, list):
        for item in messages:
            out.extend(field_errors(item, prefix))
    else:
        out.append({"pointer": prefix or "/", "detail": str(messages)})
    return out

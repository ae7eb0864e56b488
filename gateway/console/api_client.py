"""The console's one path to the data: the REST API itself, called in-process as the signed-in person.

Each call is dispatched through the Flask app like an HTTP request (in its own app context, so the API's
``g`` is its own), with the console's principal in the WSGI environ where only this process can put it. The
API's scopes, tenant walls, send gate, audit of reads and problem answers are therefore the console's too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import current_app, g
from werkzeug.exceptions import HTTPException
from werkzeug.test import EnvironBuilder

ENVIRON_KEY = "gateway.console_principal"


@dataclass
class Reply:
    status: int
    body: object
    headers: dict = field(default_factory=dict)
    raw: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def detail(self) -> str:
        """A refusal in words: the problem's detail (what is wrong and how to fix it)."""
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or f"error {self.status}")
        return f"error {self.status}"

    def field_errors(self) -> dict[str, str]:
        """A 400/422 problem's ``errors`` by field: ``/text/body`` → ``text.body``. The field is named by
        ``pointer`` (most routes), ``parameter`` (query parameters) or ``field`` (webhook endpoints)."""
        out: dict[str, str] = {}
        for err in (self.body or {}).get("errors") or [] if isinstance(self.body, dict) else []:
            if not isinstance(err, dict):
                continue
            where = err.get("pointer") or err.get("parameter") or err.get("field") or ""
            out.setdefault(str(where).strip("/").replace("/", ".") or "_", str(err.get("detail") or "invalid"))
        return out


def call(method: str, path: str, *, json=None, query: dict | None = None, data=None,
         content_type: str | None = None, headers: dict | None = None) -> Reply:
    """``method`` ``path`` (e.g. ``/v1/threads``) as the signed-in user; the answer parsed."""
    app = current_app._get_current_object()
    query = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    builder = EnvironBuilder(path=path, method=method, json=json, data=data, content_type=content_type,
                             query_string=urlencode(query, doseq=True),
                             headers={"X-Request-Id": g.get("request_id", ""), **(headers or {})})
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    environ[ENVIRON_KEY] = g.console_user
    environ["REMOTE_ADDR"] = "console"
    # A new app context: the API's g (account, audit flags, request id) must not mix with the page's.
    with app.app_context(), app.request_context(environ):
        response = app.full_dispatch_request()
    raw = response.get_data()
    body = response.get_json(silent=True) if response.is_json else None
    return Reply(response.status_code, body, dict(response.headers), raw)


def allowed(path: str, method: str = "GET") -> bool:
    """Whether the signed-in person's scopes admit the route at ``path`` (the scope its view declares), so a page
    can leave out what the API would only refuse instead of asking."""
    app = current_app._get_current_object()
    try:
        endpoint, _ = app.url_map.bind("").match(path, method)
    except HTTPException:
        return False
    scope = getattr(app.view_functions[endpoint], "required_scope", None)
    return scope is None or g.console_user.allows(scope)


def get(path: str, **query) -> Reply:
    return call("GET", path, query=query)


def post(path: str, json=None, headers: dict | None = None) -> Reply:
    return call("POST", path, json=json if json is not None else {}, headers=headers)


def patch(path: str, json) -> Reply:
    return call("PATCH", path, json=json)


def put(path: str, json) -> Reply:
    return call("PUT", path, json=json)


def delete(path: str) -> Reply:
    return call("DELETE", path)

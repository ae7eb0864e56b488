"""The console's blueprint: templates, static files, shared template helpers and error pages (never a trace)."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

from flask import Blueprint, g, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from gateway import db
from gateway.console import auth

log = logging.getLogger("gateway.console")

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static",
               static_url_path="/static")

NAV = (  # (path, label, least role)
    ("/console/inbox", "Inbox", "agent"),
    ("/console/contacts", "Contacts", "agent"),
    ("/console/campaigns", "Campaigns", "supervisor"),
    ("/console/templates", "Templates", "supervisor"),
    ("/console/reports", "Reports", "supervisor"),
    ("/console/settings", "Settings", "admin"),
)


@bp.app_context_processor   # app-wide: an unknown /console path (an app-level 404) is drawn with the menu too
def _context():
    user = g.get("console_user")
    nav = [(path, label) for path, label, role in NAV if user is not None and user.at_least(role)]
    return {"user": user, "nav": nav, "csrf_token": g.get("csrf_token", ""), "current_path": request.path,
            "notices": _notices()}


@bp.app_template_global("idempotency_key")
def idempotency_key() -> str:
    """A fresh key for a send form: a double-clicked or resubmitted form carries the same one, and the API's
    Idempotency-Key answers the repeat with the first answer instead of sending twice."""
    return uuid.uuid4().hex


def idempotency_header() -> dict:
    key = request.form.get("idempotency_key", "")
    return {"Idempotency-Key": key} if 0 < len(key) <= 255 else {}


NOTICE_COOKIE = "gw_console_notice"


def notify(response, message: str, category: str = "ok"):
    """Say ``message`` on the next page shown (after a form's redirect). ``category`` ok|info|error."""
    response.set_cookie(NOTICE_COOKIE, json.dumps([category, message[:500]]), max_age=60, path="/console",
                        httponly=True, samesite="Lax")
    return response


def _notices() -> list:
    raw = request.cookies.get(NOTICE_COOKIE)
    if not raw:
        return []
    g.notice_shown = True
    try:
        category, message = json.loads(raw)
    except (ValueError, TypeError):
        return []
    return [(category if category in ("ok", "info", "error") else "info", str(message))]


@bp.after_request
def _headers(response):
    # Pages hold personal data: never cached by the browser or a proxy, never framed, no outside resources.
    if not request.path.startswith("/console/static/"):
        response.headers["Cache-Control"] = "no-store"
    if g.get("notice_shown"):
        response.delete_cookie(NOTICE_COOKIE, path="/console")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    return response


def error_page(status: int, title: str, detail: str):
    return render_template("console/error.html", status=status, title=title, detail=detail,
                           request_id=g.get("request_id", "")), status


@bp.app_template_filter("ago")
def ago(value) -> str:
    """'3 min', '2 h', '5 d' since ``value`` (a datetime or ISO string)."""
    at = parse_time(value)
    if at is None:
        return ""
    seconds = max(0, int((datetime.now(timezone.utc) - at).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@bp.app_template_filter("when")
def when(value, fmt: str = "%Y-%m-%d %H:%M") -> Markup | str:
    """A time as a <time> element (UTC shown; the machine-readable value for assistive tools)."""
    at = parse_time(value)
    if at is None:
        return ""
    return Markup('<time datetime="{}">{}</time>').format(at.isoformat(), at.strftime(fmt) + " UTC")


def parse_time(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    titles = {400: "That did not work", 403: "Not for your role", 404: "Not found", 405: "Not allowed",
              429: "Too many attempts"}
    detail = exc.description if exc.code in (400, 403, 429) else {
        404: "there is nothing at this address in your account",
        405: f"{request.method} is not allowed here"}.get(exc.code, exc.description or exc.name)
    return error_page(exc.code or 500, titles.get(exc.code, exc.name), detail)


@bp.errorhandler(db.DatabaseUnavailable)
def _db_down(exc):
    return error_page(503, "Unavailable", "the database is unreachable; reload in a few seconds")


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.error("console page failed", exc_info=exc)
    return error_page(500, "Something went wrong", "something went wrong on our side; quote the request id "
                      "when reporting it")


def not_found_page():
    """For the app-level 404 of an unknown /console path (routing fails before any blueprint handler runs)."""
    auth.load_user()
    return error_page(404, "Not found", "there is no such console page; use the menu")

"""Who is signed in to the console: the session cookie, roles as API scopes, CSRF, and sign-in throttling.

A signed-in person acts through the REST API (gateway/console/api_client.py) as a ``ConsolePrincipal``: the
API's own scope checks, tenant walls and audit log apply to them as to any key, with ``user:<id>`` as actor.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from flask import abort, g, redirect, request

from gateway import db, runtime
from gateway.accounts import Principal
from gateway.console import users

COOKIE = "gw_console"
SIGNIN_CSRF_COOKIE = "gw_console_signin"
PATH = "/console"

# What each role may do, in the API's own scopes. A supervisor runs campaigns and templates and sees every
# thread; an admin also manages channels, keys, webhooks and users ("admin" allows every scope).
ROLE_SCOPES = {
    "agent": frozenset({"messages:read", "messages:send", "contacts:read", "contacts:write"}),
    "supervisor": frozenset({"messages:read", "messages:send", "contacts:read", "contacts:write",
                             "contacts:erase", "templates:write", "campaigns:write"}),
    "admin": frozenset({"admin"}),
}
RANK = {"agent": 0, "supervisor": 1, "admin": 2}

# Failed sign-ins allowed per email and per client address in a window, before the form answers 429.
FAILS_PER_EMAIL = 5
FAILS_PER_ADDRESS = 30
FAIL_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class ConsolePrincipal(Principal):
    user_id: object = None
    role: str = "agent"
    email: str = ""
    name: str = ""
    agent_id: object = None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"

    def at_least(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _principal(row: dict) -> ConsolePrincipal:
    return ConsolePrincipal(account_id=row["account_id"], key_id=None, scopes=ROLE_SCOPES[row["role"]],
                            user_id=row["id"], role=row["role"], email=row["email"], name=row["name"],
                            agent_id=row["agent_id"])


def _lifetimes() -> tuple[timedelta, timedelta]:
    settings = runtime.settings()
    return timedelta(minutes=settings.console_idle_minutes), timedelta(hours=settings.console_session_hours)


def load_user() -> ConsolePrincipal | None:
    """The person this request's session cookie names (once per request), or None."""
    if "console_user" in g:
        return g.console_user
    token = request.cookies.get(COOKIE)
    user = None
    if token:
        idle, _ = _lifetimes()
        with db.connection() as conn:
            row = users.session_user(conn, token, idle=idle)
        if row is not None:
            user = _principal(row)
            g.csrf_token = row["csrf_token"]
    g.console_user = user
    return user


def start_session(response, user: dict) -> None:
    """Sign ``user`` in: a new session (the old cookie's, if any, is ended first) and its cookie."""
    _, lifetime = _lifetimes()
    with db.connection() as conn:
        old = request.cookies.get(COOKIE)
        if old:
            users.end_session(conn, old)
        token, _ = users.create_session(conn, user=user, lifetime=lifetime)
    response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), path=PATH, httponly=True,
                        secure=_secure(), samesite="Lax")


def end_session(response) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        with db.connection() as conn:
            users.end_session(conn, token)
    response.delete_cookie(COOKIE, path=PATH)


def _secure() -> bool:
    public = runtime.settings().public_url or ""
    return request.is_secure or public.startswith("https://")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if value and value.startswith(PATH + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PATH + "/inbox"


def to_signin():
    wanted = request.full_path.rstrip("?") if request.method == "GET" else request.referrer or ""
    if wanted.startswith(request.host_url):
        wanted = "/" + wanted[len(request.host_url):]
    return redirect(f"{PATH}/signin?next={quote(safe_next(wanted))}")


# --- CSRF ------------------------------------------------------------------------------------------------

def check_csrf() -> None:
    """Every POST carries the session's token (a form field or the X-CSRF-Token header); else 400."""
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = g.get("csrf_token") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "the form had expired or came from another site; reload the page and submit it again")


def signin_csrf() -> str:
    """Before there is a session: a random value in a cookie and in the form, which must match (double submit)."""
    value = request.cookies.get(SIGNIN_CSRF_COOKIE)
    if not value:
        value = g.setdefault("new_signin_csrf", secrets.token_urlsafe(24))
    return value


def set_signin_csrf(response) -> None:
    if g.get("new_signin_csrf"):
        response.set_cookie(SIGNIN_CSRF_COOKIE, g.new_signin_csrf, path=PATH, httponly=True, secure=_secure(),
                            samesite="Strict")


def check_signin_csrf() -> bool:
    cookie = request.cookies.get(SIGNIN_CSRF_COOKIE) or ""
    sent = request.form.get("csrf_token") or ""
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


# --- sign-in throttling ----------------------------------------------------------------------------------

def _keys(email: str) -> tuple[str, str]:
    # Hashed: no email address or client address in Redis keys.
    who = hashlib.sha256(users.normal_email(email).encode()).hexdigest()[:24]
    where = hashlib.sha256((request.remote_addr or "-").encode()).hexdigest()[:24]
    return f"console:signin:e:{who}", f"console:signin:a:{where}"


def throttled(email: str) -> int:
    """Seconds until another attempt is allowed for this email or client address; 0 when one is."""
    client = runtime.redis_client()
    by_email, by_address = _keys(email)
    counts = client.mget(by_email, by_address)
    over = [key for key, count, limit in ((by_email, counts[0], FAILS_PER_EMAIL),
                                          (by_address, counts[1], FAILS_PER_ADDRESS))
            if count is not None and int(count) >= limit]
    if not over:
        return 0
    return max(max(client.ttl(key) for key in over), 1)


def failed(email: str) -> None:
    client = runtime.redis_client()
    pipe = client.pipeline()
    for key in _keys(email):
        pipe.incr(key)
        pipe.expire(key, FAIL_WINDOW_S, nx=True)
    pipe.execute()


def succeeded(email: str) -> None:
    runtime.redis_client().delete(_keys(email)[0])


# --- pages -----------------------------------------------------------------------------------------------

def page(role: str = "agent"):
    """A console page for ``role`` and above: signed out → the sign-in page (then back here); a lower role →
    403; a POST without the session's CSRF token → 400."""
    def wrap(view):
        @functools.wraps(view)
        def inner(**kwargs):
            user = load_user()
            if user is None:
                return to_signin()
            if not user.at_least(role):
                abort(403, f"this page is for {role}s{' and admins' if role == 'supervisor' else ''}; "
                      f"you are signed in as {'an' if user.role == 'agent' else 'a'} {user.role}")
            if request.method not in ("GET", "HEAD"):
                check_csrf()
            return view(**kwargs)
        inner.console_role = role
        return inner
    return wrap

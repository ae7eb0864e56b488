"""Signing in and out: email and password, or a one-time link from `gateway users invite`; and the live-update
poll every page uses."""
from __future__ import annotations

from flask import abort, g, make_response, redirect, render_template, request

from gateway import db, events
from gateway.console import api_client, auth, users
from gateway.console.blueprint import bp

WRONG = "That email and password do not match an account. Check both, or ask an admin for a sign-in link."


@bp.get("/")
def home():
    return redirect("/console/inbox")


def _signin_form(status: int = 200, **context):
    context.setdefault("next", auth.safe_next(request.values.get("next")))
    response = make_response(render_template("console/signin.html", signin_csrf=auth.signin_csrf(), **context),
                             status)
    auth.set_signin_csrf(response)
    return response


@bp.get("/signin")
def signin():
    if auth.load_user() is not None:
        return redirect(auth.safe_next(request.args.get("next")))
    return _signin_form(expired=request.cookies.get(auth.COOKIE) is not None)


@bp.post("/signin")
def signin_post():
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    if not auth.check_signin_csrf():
        return _signin_form(400, email=email, error="The form had expired. Sign in again.")
    errors = {}
    if not email:
        errors["email"] = "Enter your email address."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return _signin_form(400, email=email, errors=errors)
    wait = auth.throttled(email)
    if wait:
        minutes = max(1, round(wait / 60))
        return _signin_form(429, email=email, error=f"Too many sign-in attempts. Try again in {minutes} "
                            f"minute{'s' if minutes > 1 else ''}, or ask an admin for a sign-in link.")
    with db.connection() as conn:
        user = users.check_password(conn, email, password)
    if user is None:
        auth.failed(email)
        return _signin_form(401, email=email, error=WRONG)
    auth.succeeded(email)
    response = redirect(auth.safe_next(request.form.get("next")))
    auth.start_session(response, user)
    return response


@bp.post("/signout")
def signout():
    if auth.load_user() is not None:
        auth.check_csrf()
    response = redirect("/console/signin")
    auth.end_session(response)
    return response


@bp.get("/signin/link/<token>")
def link(token):
    # Showing the link's page uses nothing up: mail scanners and chat previews open links; a person presses
    # the button, which POSTs.
    with db.connection() as conn:
        user = users.peek_link(conn, token)
    if user is None:
        return _link_gone()
    return _link_form(token, user)


def _link_form(token, user, status=200, **context):
    response = make_response(render_template("console/link.html", token=token, invited=user,
                                             signin_csrf=auth.signin_csrf(), **context), status)
    auth.set_signin_csrf(response)
    return response


def _link_gone():
    return render_template("console/error.html", status=410, title="This sign-in link cannot be used",
                           detail="It has been used already or has expired (links last 24 hours). Ask an admin "
                           "for a new one: gateway users invite --account <account> --email <you>"), 410


@bp.post("/signin/link/<token>")
def link_post(token):
    password = request.form.get("password") or ""
    with db.connection() as conn:
        user = users.peek_link(conn, token)
        if user is None:
            return _link_gone()
        if not auth.check_signin_csrf():
            return _link_form(token, user, 400, error="The form had expired. Press the button again.")
        problem = users.password_problem(password) if password or not user["has_password"] else None
        if problem:
            return _link_form(token, user, 400, errors={"password": f"Choose a password of {problem}."})
        user = users.use_link(conn, token)
        if user is None:
            return _link_gone()
        if password:
            users.set_password(conn, account_id=user["account_id"], user_id=user["id"], password=password)
    response = redirect("/console/inbox")
    auth.start_session(response, user)
    return response


@bp.get("/updates")
@auth.page()
def updates():
    """The live-update poll: whether the account's change feed moved past ``after``; without it, the feed's
    head to start from. Pages re-read their live parts when ``changed``."""
    after = request.args.get("after")
    if not after:
        with db.connection() as conn:
            return {"changed": False, "next": events.head_cursor(conn, account_id=g.console_user.account_id)}
    reply = api_client.get("/v1/events", after=after, limit=100)
    if not reply.ok:
        abort(400, reply.detail)
    types = sorted({e["type"] for e in reply.body["data"]})
    return {"changed": bool(types), "types": types, "next": reply.body["next"]}

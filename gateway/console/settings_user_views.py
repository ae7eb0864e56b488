"""Console settings pages (admins): the console's own users. They have no REST API: these pages call
gateway/console/users.py and invites.py, which write an audit row for each change."""
from __future__ import annotations

from flask import abort, g, redirect, request

from gateway import db, runtime
from gateway.console import auth, invites, users
from gateway.console.blueprint import bp, notify
from gateway.console.settings_views import _page, _uuid   # the settings pages' shared helpers

# --- users -------------------------------------------------------------------------------------------------
# The console's own people (no REST API): the service functions audit every change with the admin as actor.

def _users_page(status: int = 200, **context):
    with db.connection() as conn:
        people = users.list_users(conn, account_id=g.console_user.account_id)
    context.setdefault("form", {"email": "", "name": "", "role": "agent"})
    return _page("settings_users.html", "users", status, people=people, roles=users.ROLES,
                 errors=context.pop("errors", {}), **context)


def _person(conn, user_id: str) -> dict:
    found = users.get_user(conn, account_id=g.console_user.account_id, user_id=_uuid(user_id))
    if found is None:
        abort(404)
    return found


def _is_me(user_id) -> bool:
    return str(user_id) == str(g.console_user.user_id)


@bp.get("/settings/users")
@auth.page("admin")
def settings_users():
    return _users_page()


@bp.post("/settings/users/invite")
@auth.page("admin")
def settings_user_invite():
    me = g.console_user
    form = {"email": (request.form.get("email") or "").strip(), "name": (request.form.get("name") or "").strip(),
            "role": request.form.get("role") or "agent"}
    errors = {}
    problem = users.email_problem(form["email"])
    if problem:
        errors["email"] = f"Give {problem}."
    elif users.normal_email(form["email"]) == users.normal_email(me.email):
        errors["email"] = "That is you. You are signed in already; invite someone else."
    if form["role"] not in users.ROLES:
        errors["role"] = f"Choose one of {', '.join(users.ROLES)}."
    if len(form["name"]) > 200:
        errors["name"] = "At most 200 characters."
    if errors:
        return _users_page(400, form=form, errors=errors)
    try:
        with db.connection() as conn:
            person, token, created = invites.invite(conn, account_id=me.account_id, email=form["email"],
                                                    role=form["role"], name=form["name"] or None, actor=me.actor)
    except users.EmailTaken:
        # Emails are unique across the gateway; say no more than that it cannot be used here.
        return _users_page(409, form=form, errors={"email": "This email address cannot be invited to this account. "
                                                            "Use another address."})
    return _page("settings_invited.html", "users", 201, person=person, created=created,
                 link=invites.link_url(invites.base_url(runtime.settings().public_url or request.host_url), token), hours=int(users.LINK_TTL.total_seconds() // 3600))


@bp.post("/settings/users/<user_id>/role")
@auth.page("admin")
def settings_user_role(user_id):
    role = request.form.get("role")
    if role not in users.ROLES:
        abort(400, f"the role is one of {', '.join(users.ROLES)}")
    if _is_me(user_id):
        return notify(redirect("/console/settings/users"), "You cannot change your own role: another admin can.",
                      "error")
    with db.connection() as conn:
        person = _person(conn, user_id)
        if person["role"] == role:
            return notify(redirect("/console/settings/users"), f"{person['email']} is already {role}", "info")
        users.update_user(conn, account_id=g.console_user.account_id, user_id=person["id"], actor=g.console_user.actor,
                          role=role)
    return notify(redirect("/console/settings/users"),
                  f"{person['email']} is now {role}; their sessions ended, so the new role holds from their next "
                  "sign-in")


@bp.post("/settings/users/<user_id>/state")
@auth.page("admin")
def settings_user_state(user_id):
    disable = request.form.get("disabled") == "1"
    if _is_me(user_id):
        return notify(redirect("/console/settings/users"), "You cannot disable yourself: another admin can.", "error")
    with db.connection() as conn:
        person = _person(conn, user_id)
        users.update_user(conn, account_id=g.console_user.account_id, user_id=person["id"], actor=g.console_user.actor,
                          disabled=disable)
    return notify(redirect("/console/settings/users"),
                  f"{person['email']} disabled: signed out and cannot sign in" if disable else
                  f"{person['email']} enabled: they can sign in again")


@bp.post("/settings/users/<user_id>/signout")
@auth.page("admin")
def settings_user_signout(user_id):
    me = g.console_user
    with db.connection() as conn:
        person = _person(conn, user_id)
        ended = users.sign_out_everywhere(conn, account_id=me.account_id, user_id=person["id"], actor=me.actor)
    return notify(redirect("/console/settings/users"),
                  f"{person['email']} signed out everywhere ({ended} session{'s' if ended != 1 else ''} ended)")

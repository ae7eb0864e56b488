"""Signing in to the console: passwords (argon2), one-time links, sessions that expire and can be revoked, CSRF on
every form, throttled attempts; and the console acting through the API as the person (scopes, audit)."""
from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest

from gateway import accounts, db, runtime
from gateway.console import auth, invites, users
from tests.console.conftest import PASSWORD, ROOT, csrf_of as _csrf, sign_in

SAME = "That email and password do not match"


@pytest.fixture
def people():
    """An account with a user of each role (password PASSWORD)."""
    with db.connection() as conn:
        account = accounts.create_account(conn, name=f"signin-{secrets.token_hex(3)}", actor="test")
        made = {role: users.create_user(conn, account_id=account["id"], email=f"{role}-{secrets.token_hex(4)}@ex.io",
                                        name=role.title(), role=role, actor="test", password=PASSWORD)
                for role in users.ROLES}
    return account, made


def _sign_in(client, email, password=PASSWORD, next_path="/console/updates"):
    form = client.get(f"/console/signin?next={next_path}")
    return client.post("/console/signin", data={"email": email, "password": password, "csrf_token": _csrf(form),
                                                "next": next_path})


def test_a_password_signs_in_and_the_session_reaches_pages(client, people):
    _, made = people
    resp = _sign_in(client, made["agent"]["email"].upper())   # emails are case-insensitive
    assert resp.status_code == 302 and resp.headers["Location"] == "/console/updates"
    cookie = client.get_cookie(auth.COOKIE, path="/console")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert client.get("/console/updates").status_code == 200
    with db.connection() as conn:
        stored = conn.execute("SELECT password_hash FROM console_users WHERE id = %s",
                              (made["agent"]["id"],)).fetchone()["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(client, people):
    _, made = people
    wrong = _sign_in(client, made["agent"]["email"], "not-the-password")
    unknown = _sign_in(client, f"nobody-{secrets.token_hex(3)}@ex.io")
    assert wrong.status_code == unknown.status_code == 401
    assert SAME in wrong.text and SAME in unknown.text
    assert client.get_cookie(auth.COOKIE, path="/console") is None


def test_a_disabled_user_cannot_sign_in_and_loses_their_sessions(client, people):
    account, made = people
    assert _sign_in(client, made["agent"]["email"]).status_code == 302
    with db.connection() as conn:
        users.update_user(conn, account_id=account["id"], user_id=made["agent"]["id"], actor="test", disabled=True)
    assert client.get("/console/updates").status_code == 302   # the open session ended with it
    resp = _sign_in(client, made["agent"]["email"])
    assert resp.status_code == 401 and SAME in resp.text


def test_sign_in_attempts_are_throttled_per_email(client, people):
    _, made = people
    email = made["supervisor"]["email"]
    for _ in range(auth.FAILS_PER_EMAIL):
        assert _sign_in(client, email, "guess-" + secrets.token_hex(2)).status_code == 401
    blocked = _sign_in(client, email)   # even the right password waits now
    assert blocked.status_code == 429 and "Too many sign-in attempts" in blocked.text
    assert client.get_cookie(auth.COOKIE, path="/console") is None
    runtime.redis_client().delete(*auth_keys(email))
    assert _sign_in(client, email).status_code == 302


def auth_keys(email):
    from flask import Flask
    with Flask(__name__).test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        return auth._keys(email)


def test_forms_without_the_csrf_token_are_refused(client, people):
    _, made = people
    resp = client.post("/console/signin", data={"email": made["agent"]["email"], "password": PASSWORD})
    assert resp.status_code == 400 and client.get_cookie(auth.COOKIE, path="/console") is None
    assert _sign_in(client, made["agent"]["email"]).status_code == 302
    refused = client.post("/console/signout")
    assert refused.status_code == 400 and "reload the page" in refused.text
    assert client.get("/console/updates").status_code == 200   # still signed in


def test_sign_out_ends_the_session_server_side(client, people):
    _, made = people
    _sign_in(client, made["agent"]["email"])
    token = client.get_cookie(auth.COOKIE, path="/console").value
    page = client.get("/console/nowhere")
    assert page.status_code == 404 and "Sign out" in page.text   # a page for people, with the menu
    client.post("/console/signout", data={"csrf_token": _csrf(page)})
    client.set_cookie(auth.COOKIE, token, path="/console")   # the old cookie, replayed
    assert client.get("/console/updates").status_code == 302


def test_an_expired_session_goes_to_sign_in_and_back_to_the_page_asked_for(client, people):
    _, made = people
    _sign_in(client, made["agent"]["email"])
    with db.connection() as conn:   # the session idle for longer than GATEWAY_CONSOLE_IDLE_MINUTES
        conn.execute("UPDATE console_sessions SET last_seen_at = now() - interval '1 day' WHERE user_id = %s",
                     (made["agent"]["id"],))
    resp = client.get("/console/updates?x=1")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/console/signin?next=/console/updates%3Fx%3D1"
    form = client.get(resp.headers["Location"])
    assert "Your session has ended" in form.text
    back = client.post("/console/signin", data={"email": made["agent"]["email"], "password": PASSWORD,
                                                "csrf_token": _csrf(form), "next": "/console/updates?x=1"})
    assert back.headers["Location"] == "/console/updates?x=1"


def test_next_never_leaves_the_console(client, people):
    _, made = people
    for target in ("https://evil.example/", "//evil.example/console/", "/v1/account", "/console\\@evil"):
        resp = _sign_in(client, made["agent"]["email"], next_path=target)
        assert resp.headers["Location"] == "/console/inbox", target
        client.delete_cookie(auth.COOKIE, path="/console")


def test_a_sign_in_link_works_once_and_sets_a_password(client, people):
    account, made = people
    with db.connection() as conn:
        user, token, created = invites.invite(conn, account_id=account["id"], email=f"new-{secrets.token_hex(3)}@ex.io",
                                              role="supervisor", name="Nueva", actor="test")
    assert created and user["role"] == "supervisor" and not user["has_password"]
    page = client.get(f"/console/signin/link/{token}")
    assert page.status_code == 200 and "Choose a password" in page.text
    short = client.post(f"/console/signin/link/{token}", data={"csrf_token": _csrf(page), "password": "short"})
    assert short.status_code == 400 and "at least 10 characters" in short.text
    done = client.post(f"/console/signin/link/{token}", data={"csrf_token": _csrf(page), "password": "a long passphrase"})
    assert done.status_code == 302 and client.get("/console/updates").status_code == 200
    again = client.get(f"/console/signin/link/{token}")
    assert again.status_code == 410 and "cannot be used" in again.text
    client.delete_cookie(auth.COOKIE, path="/console")
    assert _sign_in(client, user["email"], "a long passphrase").status_code == 302


def test_gateway_users_invite_prints_a_link(people):
    account, _ = people
    email = f"cli-{secrets.token_hex(3)}@ex.io"
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "invite", "--account", str(account["id"]),
                          "--email", email, "--role", "admin", "--base-url", "https://gw.example"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"https://gw\.example/console/signin/link/[A-Za-z0-9_-]{40,}\n", out.stdout)
    assert f"created admin {email}" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "invite", "--account", str(account["id"]),
                          "--email", "not-an-email"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "is not an email address" in bad.stderr


def test_roles_are_api_scopes_and_console_reads_are_audited_as_the_person(client, people):
    account, made = people
    from flask import g
    from gateway.console import api_client
    with client.application.test_request_context("/console/x"):
        g.console_user = auth._principal(made["agent"])
        assert api_client.get("/v1/threads").status == 200
        refused = api_client.post("/v1/campaigns", {"name": "x"})
        assert refused.status == 403 and "campaigns:write" in refused.detail
        contact = api_client.post("/v1/contacts", {"identities": [{"kind": "phone", "address": "+34600999001"}]})
        assert contact.status == 201, contact.body
        assert api_client.get(f"/v1/contacts/{contact.body['id']}").ok
    with db.connection() as conn:
        rows = conn.execute("SELECT actor, action FROM audit_log WHERE account_id = %s AND target_id = %s",
                            (account["id"], str(contact.body["id"]))).fetchall()
    assert {"actor": f"user:{made['agent']['id']}", "action": "read:/v1/contacts/<contact_id>"} in rows


def test_an_agent_is_refused_an_admin_page_in_the_browser(live, page, people):
    _, made = people
    sign_in(page, live, made["agent"], next_path="/console/updates")
    resp = page.goto(f"{live.url}/console/settings")
    assert resp.status == 403
    assert "Not for your role" in page.content()

"""Console users, their sessions and one-time sign-in links: the SQL, and password hashing with argon2id.

Tokens (session cookies, sign-in links) are 256-bit random strings; only their SHA-256 is stored, so the
tables alone sign nobody in. Passwords are people's choice and guessable, so they get argon2id's slow hash.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway import agents
from gateway.accounts import audit
from gateway.db import uuid7

ROLES = ("agent", "supervisor", "admin")
LINK_TTL = timedelta(hours=24)
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verifying against this when the email is unknown costs the same time as a real check: the answer's timing
# does not tell which emails have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class EmailTaken(Exception):
    pass


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    email = normal_email(email)
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        return "an email address such as ana@example.com"
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > 1024:
        return "at most 1024 characters"
    return None


_USER = "u.account_id, u.id, u.email, u.name, u.role, u.agent_id, u.created_at, u.disabled_at, " \
        "u.password_hash IS NOT NULL AS has_password"


def create_user(conn, *, account_id, email: str, name: str, role: str, actor: str,
                password: str | None = None) -> dict:
    """A user and the agent they are to routing (offline until they say otherwise)."""
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    email = normal_email(email)
    user_id = uuid7()
    with conn.transaction():
        if conn.execute("SELECT 1 FROM console_users WHERE email = %s", (email,)).fetchone():
            raise EmailTaken(email)
        agent = agents.create_agent(conn, account_id=account_id, external_id=f"console:{user_id}", name=name)
        conn.execute(
            "INSERT INTO console_users (account_id, id, email, name, role, password_hash, agent_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (account_id, user_id, email, name, role, _hasher.hash(password) if password else None, agent["id"]))
    audit(conn, account_id=account_id, actor=actor, action="console_user.created", target_type="console_user",
          target_id=user_id, detail={"role": role})
    return get_user(conn, account_id=account_id, user_id=user_id)


def get_user(conn, *, account_id, user_id) -> dict | None:
    return conn.execute(f"SELECT {_USER} FROM console_users u WHERE u.account_id = %s AND u.id = %s",
                        (account_id, user_id)).fetchone()


def find_by_email(conn, email: str) -> dict | None:
    return conn.execute(f"SELECT {_USER} FROM console_users u WHERE u.email = %s",
                        (normal_email(email),)).fetchone()


def list_users(conn, *, account_id) -> list[dict]:
    return conn.execute(
        f"SELECT {_USER}, (SELECT count(*) FROM console_sessions s WHERE s.account_id = u.account_id "
        "AND s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > now()) AS sessions "
        "FROM console_users u WHERE u.account_id = %s ORDER BY u.email", (account_id,)).fetchall()


def update_user(conn, *, account_id, user_id, actor: str, role: str | None = None,
                disabled: bool | None = None) -> dict | None:
    """Change the role or (dis)able; either ends the user's sessions, so the change holds at once."""
    if role is not None and role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    row = conn.execute(
        "UPDATE console_users SET role = coalesce(%s, role), disabled_at = CASE WHEN %s::boolean IS NULL "
        "THEN disabled_at WHEN %s::boolean THEN coalesce(disabled_at, now()) ELSE NULL END "
        "WHERE account_id = %s AND id = %s RETURNING id",
        (role, disabled, disabled, account_id, user_id)).fetchone()
    if row is None:
        return None
    revoke_sessions(conn, account_id=account_id, user_id=user_id)
    audit(conn, account_id=account_id, actor=actor, action="console_user.updated", target_type="console_user",
          target_id=user_id, detail={k: v for k, v in (("role", role), ("disabled", disabled)) if v is not None})
    return get_user(conn, account_id=account_id, user_id=user_id)


def set_password(conn, *, account_id, user_id, password: str) -> None:
    conn.execute("UPDATE console_users SET password_hash = %s WHERE account_id = %s AND id = %s",
                 (_hasher.hash(password), account_id, user_id))
    audit(conn, account_id=account_id, actor=f"user:{user_id}", action="console_user.password_set",
          target_type="console_user", target_id=user_id)


def check_password(conn, email: str, password: str) -> dict | None:
    """The user when the email is known, enabled and the password right; None otherwise (one answer for all)."""
    row = conn.execute("SELECT account_id, id, password_hash, disabled_at FROM console_users WHERE email = %s",
                       (normal_email(email),)).fetchone()
    stored = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
        ok = row is not None and row["password_hash"] is not None and row["disabled_at"] is None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        return None
    if _hasher.check_needs_rehash(stored):
        set_password(conn, account_id=row["account_id"], user_id=row["id"], password=password)
    return get_user(conn, account_id=row["account_id"], user_id=row["id"])


# --- sign-in links ---------------------------------------------------------------------------------------

def create_link(conn, *, account_id, user_id, actor: str, ttl: timedelta = LINK_TTL) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO console_signin_links (token_hash, account_id, user_id, expires_at) "
                 "VALUES (%s, %s, %s, now() + %s)", (_digest(token), account_id, user_id, ttl))
    audit(conn, account_id=account_id, actor=actor, action="console_user.link_created", target_type="console_user",
          target_id=user_id)
    return token


def peek_link(conn, token: str) -> dict | None:
    """The user a still-valid link signs in (without using it up)."""
    return conn.execute(
        f"SELECT {_USER} FROM console_signin_links l JOIN console_users u ON u.account_id = l.account_id "
        "AND u.id = l.user_id WHERE l.token_hash = %s AND l.used_at IS NULL AND l.expires_at > now() "
        "AND u.disabled_at IS NULL", (_digest(token),)).fetchone()


def use_link(conn, token: str) -> dict | None:
    row = conn.execute("UPDATE console_signin_links SET used_at = now() WHERE token_hash = %s AND used_at IS NULL "
                       "AND expires_at > now() RETURNING account_id, user_id", (_digest(token),)).fetchone()
    if row is None:
        return None
    user = get_user(conn, account_id=row["account_id"], user_id=row["user_id"])
    return None if user is None or user["disabled_at"] else user


# --- sessions --------------------------------------------------------------------------------------------

def create_session(conn, *, user: dict, lifetime: timedelta) -> tuple[str, str]:
    """A new session: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    conn.execute("INSERT INTO console_sessions (token_hash, account_id, user_id, csrf_token, expires_at) "
                 "VALUES (%s, %s, %s, %s, now() + %s)",
                 (_digest(token), user["account_id"], user["id"], csrf, lifetime))
    audit(conn, account_id=user["account_id"], actor=f"user:{user['id']}", action="console.signed_in",
          target_type="console_user", target_id=user["id"])
    return token, csrf


def session_user(conn, token: str, *, idle: timedelta, touch_every: timedelta = timedelta(minutes=1)) -> dict | None:
    """The signed-in user and the session's CSRF token, when the session is live; refreshes last_seen_at
    (at most once a ``touch_every``, so reading a page is not a write)."""
    row = conn.execute(
        f"SELECT {_USER}, s.csrf_token, s.last_seen_at, now() AS now FROM console_sessions s "
        "JOIN console_users u ON u.account_id = s.account_id AND u.id = s.user_id "
        "WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND s.last_seen_at > now() - %s "
        "AND u.disabled_at IS NULL", (_digest(token), idle)).fetchone()
    if row is not None and row["now"] - row["last_seen_at"] > touch_every:
        conn.execute("UPDATE console_sessions SET last_seen_at = now() WHERE token_hash = %s", (_digest(token),))
    return row


def end_session(conn, token: str) -> None:
    conn.execute("UPDATE console_sessions SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
                 (_digest(token),))


def sign_out_everywhere(conn, *, account_id, user_id, actor: str) -> int:
    """End every session of the user (their next page asks them to sign in), recorded in the audit log."""
    ended = revoke_sessions(conn, account_id=account_id, user_id=user_id)
    audit(conn, account_id=account_id, actor=actor, action="console_user.sessions_revoked",
          target_type="console_user", target_id=user_id, detail={"sessions": ended})
    return ended


def revoke_sessions(conn, *, account_id, user_id) -> int:
    return conn.execute("UPDATE console_sessions SET revoked_at = now() WHERE account_id = %s AND user_id = %s "
                        "AND revoked_at IS NULL", (account_id, user_id)).rowcount

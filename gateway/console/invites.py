"""One-time sign-in links for people: made by `gateway users invite` and printed by `./scripts/up` for the demo
account's first admin."""
from __future__ import annotations

from gateway import runtime
from gateway.console import users


def base_url(explicit: str | None = None) -> str:
    return (explicit or runtime.settings().public_url or "http://127.0.0.1:8000").rstrip("/")


def link_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/console/signin/link/{token}"


def invite(conn, *, account_id, email: str, role: str | None, name: str | None, actor: str) -> tuple[dict, str, bool]:
    """The user with this email (made in the account when new, with ``role`` or agent) and a fresh link token:
    (user, token, created). An existing user of another account is refused; a role given changes theirs."""
    user = users.find_by_email(conn, email)
    created = user is None
    if created:
        user = users.create_user(conn, account_id=account_id, email=email, role=role or "agent", actor=actor,
                                 name=name or users.normal_email(email).split("@")[0])
    elif user["account_id"] != account_id:
        raise users.EmailTaken(email)
    elif role and role != user["role"] or user["disabled_at"]:
        user = users.update_user(conn, account_id=account_id, user_id=user["id"], actor=actor, role=role,
                                 disabled=False)
    token = users.create_link(conn, account_id=account_id, user_id=user["id"], actor=actor)
    return user, token, created

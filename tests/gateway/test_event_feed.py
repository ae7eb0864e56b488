"""The change feed (GET /v1/events): every event once, in a stable order, even when transactions commit out of
the order their events were made; filters, bad cursors, tenant walls and retention."""
from __future__ import annotations

import base64

import psycopg

from gateway import db, events, sweeper
from tests.webhooks.conftest import make_inbox


def _feed(inbox, **params):
    from urllib.parse import urlencode
    r = inbox.api("GET", "/v1/events?" + urlencode(params))
    assert r.status_code == 200, r.json
    return r.json


def _drain(inbox, after=None, **params):
    got = []
    while True:
        page = _feed(inbox, **({"after": after} if after else {}), **params)
        got += page["data"]
        after = page["next"]
        if not page["more"]:
            return got, after


def test_a_transaction_still_open_is_not_passed_by_the_cursor(client):
    inbox = make_inbox(client)
    with db.connection() as conn:
        events.emit(conn, inbox.account_id, "contact.updated", {"n": 1})
    # An earlier event whose transaction commits late: its id is older than the next one's.
    import os
    slow = psycopg.connect(os.environ["DATABASE_URL"])
    try:
        slow.execute("INSERT INTO events (account_id, id, type, data) VALUES (%s, %s, 'contact.updated', '{\"n\": 2}')",
                     (inbox.account_id, db.uuid7()))
        with db.connection() as conn:
            events.emit(conn, inbox.account_id, "contact.updated", {"n": 3})
        first, cursor = _drain(inbox)
        assert [e["data"]["n"] for e in first] == [1]      # 3 waits behind the open transaction holding 2
        slow.commit()
    finally:
        slow.close()
    rest, cursor = _drain(inbox, after=cursor)
    assert [e["data"]["n"] for e in rest] == [2, 3]       # nothing skipped, nothing twice
    assert _feed(inbox, after=cursor) == {"data": [], "next": cursor, "more": False}


def test_types_paging_bad_cursors_and_tenant_walls(client):
    inbox, other = make_inbox(client), make_inbox(client)
    with db.connection() as conn:
        for i in range(5):
            events.emit(conn, inbox.account_id, "thread.status_changed" if i % 2 else "contact.updated", {"i": i})
        events.emit(conn, other.account_id, "contact.updated", {"i": 99})
    got, _ = _drain(inbox, limit=2)
    assert [e["data"]["i"] for e in got] == [0, 1, 2, 3, 4]
    assert [e["data"]["i"] for e in _drain(inbox, types="thread.status_changed")[0]] == [1, 3]
    assert [e["data"]["i"] for e in _drain(other)[0]] == [99]
    for bad in ("nonsense", base64.urlsafe_b64encode(b"1:x").decode()):
        r = inbox.api("GET", f"/v1/events?after={bad}")
        assert r.status_code == 400 and r.json["type"].endswith("/bad-cursor")
    assert inbox.api("GET", "/v1/events?types=DROP TABLE").status_code == 400


def test_events_past_the_retention_are_dropped(client):
    inbox = make_inbox(client)
    with db.connection() as conn:
        events.emit(conn, inbox.account_id, "contact.updated", {"old": True})
        events.emit(conn, inbox.account_id, "contact.updated", {"old": False})
        conn.execute("UPDATE events SET created_at = now() - interval '40 days' WHERE account_id = %s "
                     "AND data ->> 'old' = 'true'", (inbox.account_id,))
    assert sweeper.sweep_once(grace_s=0)["expired_events"] >= 1
    assert [e["data"]["old"] for e in _drain(inbox)[0]] == [False]


def test_the_cursor_holds_across_a_restart_of_the_app_and_its_connections(client):
    """A cursor is the (transaction, sequence) of the last event read: nothing kept in a process, so a consumer
    resumes after a restart exactly where it stopped, neither skipping nor repeating."""
    from gateway.app import create_app
    inbox = make_inbox(client)
    with db.connection() as conn:
        for i in range(3):
            events.emit(conn, inbox.account_id, "contact.updated", {"i": i})
    first, cursor = _drain(inbox)
    db.close()                                   # every pooled connection gone, as after a restart
    from gateway import runtime
    runtime.init()
    inbox.client = create_app().test_client()    # a new app instance
    with db.connection() as conn:
        for i in range(3, 5):
            events.emit(conn, inbox.account_id, "contact.updated", {"i": i})
    rest, _ = _drain(inbox, after=cursor)
    assert [e["data"]["i"] for e in first] == [0, 1, 2] and [e["data"]["i"] for e in rest] == [3, 4]

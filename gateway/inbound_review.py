"""Stored webhook events that parsed with surprises or failed to apply: what an operator reviews."""
from __future__ import annotations


def flagged(conn, *, account_id, limit: int = 50) -> list[dict]:
    return conn.execute(
        "SELECT id, channel_id, provider, received_at, processed_at, attempts, last_error, review_reasons "
        "FROM inbound_events WHERE account_id = %s AND (review_reasons IS NOT NULL OR last_error IS NOT NULL) "
        "ORDER BY received_at DESC LIMIT %s", (account_id, limit)).fetchall()

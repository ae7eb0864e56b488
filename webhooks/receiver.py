"""The webhook receiver blueprint: /webhooks/<provider>.

Flow for every provider: read the raw bytes, find the channel, verify the
signature in constant time, store the raw event (encrypted, deduplicated) and
commit, answer 200, then enqueue processing with the event id only. A crash
after the answer loses nothing: the sweeper finds the unprocessed row.
"""
from __future__ import annotations

from flask import Blueprint, request

from gateway import channels, db, inbound
from gateway.problems import Problem
from webhooks import registry

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.route("/<provider>", methods=["GET", "POST"])
def receive(provider: str):
    found = registry.get(provider)
    if found is None:
        raise Problem(404, "Not Found", f"no provider named {provider!r} is installed; "
                      f"installed: {', '.join(sorted(registry.PROVIDERS)) or 'none yet'}",
                      slug="unknown-provider")
    return intake(found)


def intake(provider):
    """Verify, store durably, then acknowledge. Providers register in webhooks/registry.py."""
    raw = request.get_data(cache=True)
    headers = dict(request.headers)
    url = request.url
    with db.connection() as conn:
        channel = None
        for external_id in provider.channel_ids(raw, headers, url):
            channel = conn.execute(
                "SELECT account_id, id FROM channels WHERE kind = %s AND external_id = %s AND status = 'active'",
                (provider.name, external_id)).fetchone()
            if channel is not None:
                break
        if channel is None:
            raise Problem(404, "Not Found", "no active channel matches this webhook; register the channel first",
                          slug="unknown-channel")
        creds = channels.credentials(conn, account_id=channel["account_id"], channel_id=channel["id"])
        if not provider.verify(raw, headers, url, creds):
            raise Problem(401, "Unauthorized", "the webhook signature does not match the channel's secret",
                          slug="bad-signature")
        event_id, created = inbound.store_event(
            conn, account_id=channel["account_id"], channel_id=channel["id"], provider=provider.name,
            dedupe_key=provider.dedupe_key(raw, headers), raw=raw)
    if created:
        inbound.enqueue_processing(channel["account_id"], event_id)
    return "", 200

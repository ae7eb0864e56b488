"""The webhook receiver blueprint: /webhooks/<provider>.

POST, for every provider: read the raw bytes, find the channel, verify the
signature in constant time, store the raw event (encrypted, deduplicated) and
wait for its commit, answer 200; the commit's writer then enqueues processing
with event ids only. A crash after the answer loses nothing: the sweeper finds
the unprocessed row. Nothing reaches the database before the signature holds.

GET answers a provider's subscription handshake (Meta's hub.challenge).
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from gateway import channels, db, inbound, runtime
from gateway.group_commit import CommitTimeout
from gateway.providers import BadRequest
from gateway.problems import Problem
from webhooks import registry

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _provider(name: str):
    found = registry.get(name)
    if found is None:
        raise Problem(404, "Not Found", f"no provider named {name!r} is installed; "
                      f"installed: {', '.join(sorted(registry.PROVIDERS)) or 'none yet'}",
                      slug="unknown-provider")
    return found


@bp.get("/<provider>")
def handshake(provider: str):
    found = _provider(provider)
    offered = found.handshake(request.args) if hasattr(found, "handshake") else None
    if offered is None:
        if not hasattr(found, "handshake") or found.handshake({"hub.mode": "subscribe", "hub.verify_token": "x",
                                                                "hub.challenge": "x"}) is None:
            raise Problem(405, "Method Not Allowed", f"{provider} webhooks are POSTed; configure the provider "
                          "to use POST", slug="use-post", headers={"Allow": "POST"})
        raise Problem(400, "Bad Handshake", "a GET here is the subscription handshake: it needs hub.mode=subscribe, "
                      "hub.verify_token and hub.challenge", slug="bad-handshake")
    token, challenge = offered
    with db.connection() as conn:
        channel = channels.by_verify_token(conn, found.name, token)
    if channel is None:
        raise Problem(403, "Forbidden", f"the verify token matches no active {found.name} channel; use the "
                      "channel's verify_token credential", slug="bad-verify-token")
    return Response(challenge, 200, mimetype="text/plain")


def public_url() -> str:
    """The URL as the provider called it: the configured public base URL behind a proxy, else the request's."""
    # The raw request target keeps the query's original percent-encoding, which the signer saw.
    target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not target:
        query = request.query_string.decode("latin-1")
        target = request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", "") + (
            f"?{query}" if query else "")
    base = runtime.settings().public_url or request.host_url.rstrip("/")
    return base + target


@bp.post("/<provider>")
def intake(provider: str):
    found = _provider(provider)
    raw = request.get_data(cache=True)
    headers = dict(request.headers)
    # Building the URL costs more than the rest of the request's checks: only for providers that sign it.
    url = public_url() if getattr(found, "signs_url", False) else ""
    try:
        candidates = found.channel_ids(raw, headers, url)
    except BadRequest as exc:
        raise Problem(400, "Malformed Body", f"{exc}; {found.name} sends JSON or form bodies as documented",
                      slug="malformed-body") from None
    channel = channels.route(db.connection, found.name, candidates)
    if channel is None:
        raise Problem(404, "Not Found", f"no active {found.name} channel matches this webhook; register the "
                      "channel first (POST /v1/channels or `gateway channels add`)", slug="unknown-channel")
    if not found.verify(raw, headers, url, channel.credentials):
        with db.connection() as conn:
            channels.record_rejection(conn, account_id=channel.account_id, channel_id=channel.channel_id)
        raise Problem(401, "Unauthorized", "the webhook signature does not match the channel's secret; check the "
                      "channel's credentials (and GATEWAY_PUBLIC_URL for providers that sign the URL)",
                      slug="bad-signature")
    event = inbound.prepare(account_id=channel.account_id, channel_id=channel.channel_id, provider=found.name,
                            dedupe_key=found.dedupe_key(raw, headers), raw=raw)
    try:
        inbound.store(event)
    except CommitTimeout:
        raise Problem(503, "Service Unavailable", "the event could not be stored in time; retry shortly",
                      slug="store-timeout", headers={"Retry-After": "5"}) from None
    body, mimetype = getattr(found, "ack", ("", "text/plain"))
    return Response(body, 200, mimetype=mimetype)

"""The webhook receiver: /webhooks/<provider>.

POST, for every provider: read the raw bytes, find the channel, verify the
signature in constant time, store the raw event (encrypted, deduplicated) and
wait for the commit that holds it, answer 200; jobs carrying event ids are
enqueued just after. A crash after the answer loses nothing: the sweeper finds
the unprocessed row. Nothing reaches the database before the signature holds.

The POST path is the hottest in the gateway, so it is plain WSGI in front of
Flask (``Receiver`` wraps the app): a provider's retries are throttled by how
fast we answer, and Flask's request machinery cost more than everything the
receiver itself does. Errors are the same RFC 9457 documents the API returns.
GET (Meta's subscription handshake) is rare and stays a Flask view.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Blueprint, Response, request

from gateway import channels, db, inbound, metrics, runtime
from gateway.group_commit import CommitTimeout
from gateway.problems import Problem, problem_document
from gateway.providers import BadRequest
from webhooks import registry

log = logging.getLogger("gateway.http")
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
PREFIX = "/webhooks/"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


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


def intake(found, raw: bytes, headers: dict, url: str) -> tuple[str, str]:
    """Route, verify, store durably; returns the provider's acknowledgement (body, content type)."""
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
        _, created = inbound.store(event)
    except CommitTimeout:
        raise Problem(503, "Service Unavailable", "the event could not be stored in time; retry shortly",
                      slug="store-timeout", headers={"Retry-After": "5"}) from None
    except db.DatabaseUnavailable:
        raise Problem(503, "Service Unavailable", "the database is unreachable; retry shortly",
                      slug="database-unavailable", headers={"Retry-After": "5"}) from None
    metrics.WEBHOOKS.labels(found.name, "accepted" if created else "duplicate").inc()
    return getattr(found, "ack", ("", "text/plain"))


def _headers(environ) -> dict:
    out = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        out["Content-Length"] = environ["CONTENT_LENGTH"]
    return out


def public_url(environ) -> str:
    """The URL as the provider called it: the configured public base URL behind a proxy, else the request's.
    The raw request target keeps the query's original percent-encoding, which the signer saw."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        query = environ.get("QUERY_STRING", "")
        target = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    base = runtime.settings().public_url
    if not base:
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        base = f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
    return base + target


class Receiver:
    """WSGI middleware answering POST /webhooks/<provider> itself; everything else goes to the wrapped app."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(PREFIX) or "/" in path[len(PREFIX):]:
            return self.app(environ, start_response)
        started = time.perf_counter()
        supplied = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        status, body, ctype, extra = self._handle(environ, path[len(PREFIX):], request_id)
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("X-Request-Id", request_id),
                   *extra.items()]
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        if status == 200:
            metrics.INGEST_SECONDS.labels(path[len(PREFIX):]).observe(time.perf_counter() - started)
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={"method": "POST", "path": path, "status": status,
                                       "ms": round((time.perf_counter() - started) * 1000, 2)})
        return [body]

    def _handle(self, environ, name: str, request_id: str):
        limit = runtime.settings().max_request_bytes
        try:
            try:
                length = int(environ.get("CONTENT_LENGTH") or -1)
            except ValueError:
                raise Problem(400, "Bad Request", "Content-Length is not a number") from None
            if length > limit:
                raise Problem(413, "Payload Too Large", f"the request body exceeds {limit} bytes; send less or "
                              "raise GATEWAY_MAX_REQUEST_BYTES", slug="payload-too-large")
            found = _provider(name)
            stream = environ["wsgi.input"]
            raw = stream.read(length) if length >= 0 else stream.read(limit + 1)
            if len(raw) > limit:
                raise Problem(413, "Payload Too Large", f"the request body exceeds {limit} bytes; send less or "
                              "raise GATEWAY_MAX_REQUEST_BYTES", slug="payload-too-large")
            url = public_url(environ) if getattr(found, "signs_url", False) else ""
            text, ctype = intake(found, raw, _headers(environ), url)
            return 200, text.encode(), ctype, {}
        except Problem as exc:
            # The provider label is a name the registry knows: the path is the caller's to choose.
            metrics.WEBHOOKS.labels(name if name in registry.PROVIDERS else "unknown",
                                    exc.slug.replace("-", "_")).inc()
            doc = problem_document(exc.status, exc.title, exc.detail, slug=exc.slug, errors=exc.errors,
                                   request_id=request_id, extra=exc.extra)
            return exc.status, json.dumps(doc).encode(), "application/problem+json", exc.headers
        except Exception:
            log.error("unhandled error in the webhook receiver", exc_info=True)
            metrics.WEBHOOKS.labels(name if name in registry.PROVIDERS else "unknown", "internal_error").inc()
            doc = problem_document(500, "Internal Server Error", "something went wrong on our side; quote the "
                                   "request_id when reporting it", slug="internal-error", request_id=request_id)
            return 500, json.dumps(doc).encode(), "application/problem+json", {}


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}

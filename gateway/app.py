"""The Flask application factory: API, webhook receiver, health checks, error handling."""
from __future__ import annotations

import logging
import time

import psycopg
import redis
from flask import Flask, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway import db, logs, runtime
from gateway.config import Settings
from gateway.http import JSONProvider, assign_request_id
from gateway.problems import Problem, problem_response

log = logging.getLogger("gateway.http")


def create_app(settings: Settings | None = None) -> Flask:
    settings = runtime.init(settings)
    logs.setup(settings.log_level)
    app = Flask(__name__)
    app.json_provider_class = JSONProvider
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes

    from gateway.api import bp as api_bp
    from gateway.api.upload_views import links_bp
    from gateway.uploads import LINK_PATH
    from webhooks.receiver import Receiver, bp as webhooks_bp
    app.register_blueprint(api_bp)
    app.register_blueprint(links_bp)
    app.register_blueprint(webhooks_bp)
    from gateway.facade.routes import bp as graph_bp
    app.register_blueprint(graph_bp)   # the Cloud API facade under /graph (Meta's paths and shapes)
    from gateway.facade.twilio_views import bp as twilio_bp
    app.register_blueprint(twilio_bp)   # the Twilio-shaped facade under /twilio (Twilio's Messages API)
    from gateway.console import bp as console_bp, not_found_page
    app.register_blueprint(console_bp)   # the web console under /console (server-rendered, over the REST API)
    from gateway.api.openapi import bp as openapi_bp
    app.register_blueprint(openapi_bp)   # GET /openapi.json and /docs
    from gateway import metrics
    metrics.register(app)
    app.wsgi_app = Receiver(app.wsgi_app)   # POST /webhooks/* answered before Flask's request machinery

    def _body_limit() -> int:
        # A view may take more than GATEWAY_MAX_REQUEST_BYTES by saying so (POST /v1/media: 100 MB documents);
        # every other endpoint keeps the global limit.
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        return max(getattr(view, "max_request_bytes", 0), settings.max_request_bytes)

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        assign_request_id()
        limit = _body_limit()
        if limit != settings.max_request_bytes:
            request.max_content_length = limit   # also bounds a body sent without Content-Length
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if log.isEnabledFor(logging.INFO) and request.path not in ("/healthz", "/readyz", "/metrics"):
            # The path holds only ids; the query string may hold tokens, so it is left out. A media link's
            # path is its token, a credential: only the prefix is logged.
            path = LINK_PATH + "<token>" if request.path.startswith(LINK_PATH) else request.path
            elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            log.info("request", extra={"method": request.method, "path": path,
                                       "status": response.status_code, "ms": round(elapsed_ms, 2)})
        return response

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        checks = {"postgresql": db.ping(timeout=2.0), "redis": _redis_ok()}
        status = 200 if all(checks.values()) else 503
        return {"status": "ready" if status == 200 else "unavailable", "checks": checks}, status

    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return exc.response()

    @app.errorhandler(db.DatabaseUnavailable)
    def _db_down(exc):
        return problem_response(503, "Service Unavailable", "the database is unreachable; retry shortly",
                                slug="database-unavailable", headers={"Retry-After": "5"})

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc):
        return problem_response(503, "Service Unavailable", "the job queue (Redis) is unreachable; retry shortly",
                                slug="queue-unavailable", headers={"Retry-After": "5"})

    @app.errorhandler(psycopg.DataError)
    def _unstorable(exc):
        # PostgreSQL refused a value the request carried (a NUL character in text or JSON, a number or a date
        # out of range): the caller's to fix, whichever view let it through, so a 400 and not a 500.
        return problem_response(400, "Unstorable Value", "a value in the request cannot be stored (a NUL "
                                "character \\u0000 in text, or a number or date out of range); remove or change it",
                                slug="unstorable-value")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        limit = _body_limit()
        return problem_response(413, "Payload Too Large",
                                f"the request body exceeds {limit} bytes; send less" +
                                (" or raise GATEWAY_MAX_REQUEST_BYTES" if limit == settings.max_request_bytes
                                 else ", the most this endpoint takes"), slug="payload-too-large")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404 and request.path.startswith("/console"):
            return not_found_page()   # a person's browser: a page, not JSON
        detail = {404: "no such endpoint; see the API section of the README",
                  405: f"{request.method} is not allowed here"}.get(exc.code, exc.description or exc.name)
        return problem_response(exc.code or 500, exc.name, detail)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.error("unhandled error", exc_info=exc)
        return problem_response(500, "Internal Server Error",
                                "something went wrong on our side; quote the request_id when reporting it",
                                slug="internal-error")

    return app


def _redis_ok() -> bool:
    try:
        return bool(runtime.redis_client().ping())
    except redis.RedisError:
        return False

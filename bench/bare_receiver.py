"""The ingest benchmark's reference: a Flask endpoint that only checks the signature and parses the JSON.

Not a benchmark script of its own: a WSGI app that ``bench/ingest.py`` serves with gunicorn
(``bench.bare_receiver:app``); its figures come out of that script's JSON line.

Nothing is stored, so nothing would survive a crash: it is the ceiling a
durable receiver is measured against, served by the same gunicorn settings.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os

from flask import Flask, request

app = Flask(__name__)
SECRET = os.environ.get("BENCH_APP_SECRET", "bench-secret").encode()


@app.post("/webhooks/whatsapp")
def receive():
    raw = request.get_data(cache=True)
    expected = "sha256=" + hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return "", 401
    json.loads(raw)
    return "", 200

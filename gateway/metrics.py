"""Prometheus metrics: the objects every process updates, and ``GET /metrics``.

Hot paths only ever ``inc()`` or ``observe()`` (no I/O): counts and latencies of
webhooks, sends, provider calls, rate-limit waits, campaign feeding and event
deliveries. What lives in PostgreSQL and Redis (backlogs, queue depths, campaign
progress) is read when Prometheus scrapes, by ``StateCollector``: a handful of
bounded statements under a short timeout, once per scrape.

Labels are closed sets chosen by the code (provider, channel kind, outcome, an
error code shaped like one), never a phone number, a message id or an account:
a label value is a time series for ever, and these are read by operators who
are not the data's controller.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``gateway up`` and the Procfile set it),
every process (gunicorn's, the workers', the sweeper) writes its samples to
files there and a scrape of any web process adds them all up. The variable must
be set before ``prometheus_client`` is first imported, so it comes from the
environment of the process, never from code here.
"""
from __future__ import annotations

import atexit
import hmac
import ipaddress
import logging
import os
import re
import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from gateway import multiproc, runtime

log = logging.getLogger("gateway.metrics")

# Latencies from a millisecond (a group commit on a quiet machine) to a provider's slowest answers.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

if os.environ.get(multiproc.ENV):
    # Each metric opens its file as it is made, below: a missing folder would stop the process from starting.
    os.makedirs(os.environ[multiproc.ENV], exist_ok=True)

# --- updated where things happen ----------------------------------------------------------------------------

WEBHOOKS = Counter(
    "gateway_webhooks_received_total", "Provider webhook requests by provider and result (accepted, duplicate, "
    "or the problem's type: bad_signature, unknown_channel, malformed_body, payload_too_large, …)",
    ["provider", "result"])
INGEST_SECONDS = Histogram(
    "gateway_webhook_ingest_seconds", "From a webhook request's arrival to its answer after the raw event is "
    "durably committed (accepted and duplicate requests)", ["provider"], buckets=_LATENCY_BUCKETS)
SENDS = Counter(
    "gateway_sends_total", "Send attempts recorded by the send workers, by channel kind and outcome "
    "(sent, retry, failed, unknown, held)", ["channel_kind", "outcome"])
PROVIDER_SECONDS = Histogram(
    "gateway_provider_request_seconds", "Duration of the provider adapter's send call (HTTP round trip included)",
    ["provider"], buckets=_LATENCY_BUCKETS)
PROVIDER_ERRORS = Counter(
    "gateway_provider_errors_total", "Provider answers carrying an error code, by provider and code",
    ["provider", "code"])
SENDS_IN_FLIGHT = Gauge(
    "gateway_sends_in_flight", "Provider send calls under way, across live worker processes",
    multiprocess_mode="livesum")
RATELIMIT_WAIT_SECONDS = Histogram(
    "gateway_ratelimit_wait_seconds", "Each wait for a token bucket (count: waits, sum: seconds spent waiting)",
    ["limiter"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 20.0, 60.0))
RATELIMIT_DEFERRED = Counter(
    "gateway_ratelimit_deferred_total", "Sends put off rather than waited for: the channel's bucket would take "
    "too long, or the customer's pair limit holds the message back", ["limiter"])
CAMPAIGN_FED = Counter(
    "gateway_campaign_recipients_fed_total", "Campaign recipients the feeder handed to the send gate, by result "
    "(queued, skipped, deferred by quiet hours)", ["result"])
SWEEPER_REENQUEUED = Counter(
    "gateway_sweeper_reenqueued_total", "Rows pending in PostgreSQL whose job Redis no longer held, re-enqueued by "
    "the sweeper, by kind", ["kind"])
# Called by the event-webhook deliverer (gateway/webhook_*.py).
EVENT_DELIVERIES = Counter(
    "gateway_event_deliveries_total", "Event webhook delivery attempts by outcome (delivered, retry, dead, "
    "disabled, timeout)", ["outcome"])
EVENT_DELIVERY_SECONDS = Histogram(
    "gateway_event_delivery_seconds", "Duration of one event webhook delivery attempt (HTTP round trip)",
    buckets=_LATENCY_BUCKETS)

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def error_code_label(code) -> str:
    """A provider's error code as a label value: codes are short tokens; anything else would be free text."""
    code = str(code)
    return code if _CODE.match(code) else "other"


def provider_call(provider: str, seconds: float, error_code) -> None:
    PROVIDER_SECONDS.labels(provider).observe(seconds)
    if error_code:
        PROVIDER_ERRORS.labels(provider, error_code_label(error_code)).inc()


# --- multiprocess mode --------------------------------------------------------------------------------------

def multiproc_dir() -> str | None:
    return os.environ.get(multiproc.ENV) or None


if multiproc_dir():
    atexit.register(lambda: multiproc.mark_process_dead(os.getpid()))


# --- read at scrape time ------------------------------------------------------------------------------------

COUNT_CAP = 1_000_000          # gauges read from tables stop counting here: a scrape stays cheap in a disaster
STATEMENT_TIMEOUT_MS = 2000


class StateCollector:
    """Backlogs, queue depths and campaign progress, read from PostgreSQL and Redis when scraped."""

    def describe(self):
        return []   # nothing registered ahead: a registry must not collect (query) just to learn the names

    def collect(self):
        started = time.perf_counter()
        up = GaugeMetricFamily("gateway_metrics_source_up", "1 when the scrape could read this source, else 0",
                               labels=["source"])
        families: list = []
        for source, read in (("postgresql", self._postgres), ("redis", self._redis)):
            try:
                families += read()
                up.add_metric([source], 1)
            except Exception as exc:   # a scrape still answers with what it has: the outage is the news
                log.warning("metrics source unavailable", extra={"source": source, "error": type(exc).__name__})
                up.add_metric([source], 0)
        yield from families
        yield up
        took = GaugeMetricFamily("gateway_metrics_collect_seconds", "Time this scrape spent reading PostgreSQL "
                                 "and Redis")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _postgres(self) -> list:
        from gateway import db
        from gateway.sweeper import MAX_ATTEMPTS
        backlog = GaugeMetricFamily(
            "gateway_normalisation_backlog", "Raw inbound events stored but not yet applied, by state (pending: "
            f"still being retried; given_up: failed {MAX_ATTEMPTS} times and left for an operator)",
            labels=["state"])
        oldest = GaugeMetricFamily("gateway_normalisation_backlog_oldest_seconds",
                                   "Age of the oldest raw inbound event waiting to be applied (0: none)")
        outbound = GaugeMetricFamily("gateway_outbound_pending", "Outbound messages not yet settled by the send "
                                     "workers, by status", labels=["status"])
        campaigns = GaugeMetricFamily("gateway_campaigns", "Campaigns by state", labels=["state"])
        recipients = GaugeMetricFamily(
            "gateway_campaign_recipients", "Recipients of scheduled, running and paused campaigns by the "
            "campaign's state and the recipient's (pending, queued, skipped)", labels=["campaign_state", "state"])
        deliveries = GaugeMetricFamily("gateway_event_deliveries_pending", "Event webhook deliveries not yet "
                                       "delivered or dead, by state", labels=["state"])
        with db.connection(timeout=2.0) as conn:
            conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE attempts < %(max)s) AS pending, "
                "count(*) FILTER (WHERE attempts >= %(max)s) AS given_up, "
                "coalesce(extract(epoch FROM now() - min(received_at) FILTER (WHERE attempts < %(max)s)), 0) "
                "AS oldest, to_regclass('webhook_deliveries') IS NOT NULL AS has_deliveries "
                "FROM (SELECT attempts, received_at FROM inbound_events WHERE processed_at IS NULL "
                "LIMIT %(cap)s) e", {"max": MAX_ATTEMPTS, "cap": COUNT_CAP}).fetchone()
            backlog.add_metric(["pending"], row["pending"])
            backlog.add_metric(["given_up"], row["given_up"])
            oldest.add_metric([], float(row["oldest"]))
            by_status = {s: 0 for s in ("queued", "sending", "retry_scheduled")}
            for r in conn.execute(
                    "SELECT status, count(*) AS n FROM (SELECT status FROM messages "
                    "WHERE status IN ('queued', 'sending', 'retry_scheduled') LIMIT %s) m GROUP BY status",
                    (COUNT_CAP,)).fetchall():
                by_status[r["status"]] = r["n"]
            for status, n in by_status.items():
                outbound.add_metric([status], n)
            for r in conn.execute("SELECT state, count(*) AS n FROM campaigns GROUP BY state").fetchall():
                campaigns.add_metric([r["state"]], r["n"])
            for r in conn.execute(
                    "SELECT c.state AS campaign_state, r.state, count(*) AS n FROM campaigns c "
                    "JOIN campaign_recipients r ON r.account_id = c.account_id AND r.campaign_id = c.id "
                    "WHERE c.state IN ('scheduled', 'running', 'paused') GROUP BY 1, 2").fetchall():
                recipients.add_metric([r["campaign_state"], r["state"]], r["n"])
            out = [backlog, oldest, outbound, campaigns, recipients]
            if row["has_deliveries"]:
                by_state = {"pending": 0, "delivering": 0}
                for r in conn.execute(
                        "SELECT state, count(*) AS n FROM (SELECT state FROM webhook_deliveries "
                        "WHERE state IN ('pending', 'delivering') LIMIT %s) d GROUP BY state",
                        (COUNT_CAP,)).fetchall():
                    by_state[r["state"]] = r["n"]
                for state, n in by_state.items():
                    deliveries.add_metric([state], n)
                out.append(deliveries)
            conn.rollback()   # read only: nothing to commit, and the SET LOCAL ends with it
        return out

    def _redis(self) -> list:
        from gateway import jobs
        depth = GaugeMetricFamily("gateway_queue_jobs", "RQ jobs by queue and state (queued: waiting for a "
                                  "worker; started; failed: kept for a day)", labels=["queue", "state"])
        client = runtime.redis_client()
        pipe = client.pipeline(transaction=False)
        wanted = []
        for name in jobs.QUEUES:
            q = jobs.queue(name)
            pipe.llen(q.key)
            pipe.zcard(q.started_job_registry.key)
            pipe.zcard(q.failed_job_registry.key)
            wanted += [(name, "queued"), (name, "started"), (name, "failed")]
        for (name, state), n in zip(wanted, pipe.execute()):
            depth.add_metric([name, state], n)
        return [depth]


class _ThisProcess:
    """The default registry (this process's metrics and its process_* ones) as one collector among others."""

    def describe(self):
        return []

    def collect(self):
        return REGISTRY.collect()


def render(accept: str = "") -> tuple[bytes, str]:
    """The scrape: every process's samples (multiprocess mode) or this process's, then the state read now."""
    registry = CollectorRegistry()
    if multiproc_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


# --- GET /metrics -------------------------------------------------------------------------------------------

def _loopback(addr: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(addr or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


# A reverse proxy on this host makes every client look local; its forwarding headers give it away.
_FORWARDED = ("Forwarded", "X-Forwarded-For", "X-Real-Ip")


def register(app) -> None:
    """Add ``GET /metrics`` to the web app. Flask is imported here, not above: workers and the sweeper
    import this module for its counters and never serve HTTP."""
    from flask import Response, request
    from gateway.problems import Problem

    def authorise() -> None:
        token = runtime.settings().metrics_token
        if token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                raise Problem(401, "Unauthorized", "send the metrics token as 'Authorization: Bearer <token>' "
                              "(the value of GATEWAY_METRICS_TOKEN)", slug="metrics-unauthorized",
                              headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
            return
        if not _loopback(request.remote_addr) or any(h in request.headers for h in _FORWARDED):
            raise Problem(403, "Forbidden", "without GATEWAY_METRICS_TOKEN, /metrics answers only this host's "
                          "loopback address (and nothing relayed by a proxy); set GATEWAY_METRICS_TOKEN and "
                          "scrape with 'Authorization: Bearer <token>'", slug="metrics-forbidden")

    @app.get("/metrics")
    def metrics():
        authorise()
        body, content_type = render(request.headers.get("Accept", ""))
        return Response(body, 200, content_type=content_type, headers={"Cache-Control": "no-store"})

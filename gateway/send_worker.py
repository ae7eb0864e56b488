"""The send worker: each message sent at most once, within the sender's rate, classified by its provider.

State machine, each step committed: ``queued | retry_scheduled`` → ``sending``
(claimed: attempts + 1) → the provider call, outside any transaction →
``sent`` (provider id recorded, early statuses applied) | ``retry_scheduled``
(backoff with jitter, honouring Retry-After) | ``failed`` (code and reason).
An unknown outcome (timeout after the request went out, a worker killed
mid-call) stays ``sending``: the sweeper reconciles it before anything is sent
again. A job takes a batch of ids and sends them from a small thread pool, so
a worker is not bound by one HTTP round trip at a time.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from psycopg.types.json import Jsonb

from gateway import channels, consent, db, keystore, messages, metrics, outbound, ratelimit, runtime, uploads
from gateway.crypto import DataKey, data_key_aad, field_aad
from gateway.db import uuid7
from gateway.providers import OutboundMessage, SendResult

log = logging.getLogger("gateway.send")
MAX_ATTEMPTS = int(os.environ.get("GATEWAY_SEND_MAX_ATTEMPTS", "8"))
MAX_AGE = timedelta(hours=float(os.environ.get("GATEWAY_SEND_MAX_AGE_H", "24")))
CONCURRENCY = int(os.environ.get("GATEWAY_SEND_CONCURRENCY", "16"))
_permits: dict = {}
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool, _pool_pid = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="send"), os.getpid()
    return _pool


BATCH = 200
JOB_BUDGET_S = 10.0


def send_batch(account_id: str, message_ids: list[str]) -> dict[str, str]:
    """RQ job: claim these messages in one statement, send them concurrently, record the outcomes in one
    transaction; then, while time allows, claim more of the account's queued messages straight from
    PostgreSQL (jobs enqueued one per request would otherwise cost more than the sends). Jobs whose ids
    were taken this way find them claimed and skip. Returns each message's outcome."""
    outcomes: dict[str, str] = {}
    deadline = time.monotonic() + JOB_BUDGET_S
    account_id = _uuid(account_id)   # parsed once, not in each message's AAD (three per message)
    claimed, channels_by_id = _claim_many(account_id, message_ids)
    while claimed:
        outcomes.update(_send_claimed(account_id, claimed, channels_by_id))
        if time.monotonic() > deadline:
            break
        claimed, channels_by_id = _claim_many(account_id, None)
    return outcomes


def _send_claimed(account_id, claimed, channels_by_id) -> dict[str, str]:
    from webhooks import registry

    held = _pair_waits(claimed, channels_by_id)

    def work(item):
        row, message = item
        channel, creds = channels_by_id[row["channel_id"]]
        provider = registry.get(channel["kind"])
        if isinstance(message, Exception):   # nothing to send: an upload gone, no links, a template paused
            return row, SendResult("failed", error_code=getattr(message, "code", "media_unavailable"),
                                   reason=str(message)), channel
        if held.get(row["id"]):
            return row, SendResult("retry", retry_after_s=held[row["id"]], reason=_PAIR_REASON), channel
        if channel["status"] != "active":
            return row, SendResult("retry", retry_after_s=60, reason=f"channel {channel['status']}"), channel
        rate = float((channel["settings"] or {}).get("rate_per_s")
                     or getattr(provider, "capabilities", {}).get("rate_per_s", 80))
        permit = _permits.get((channel["id"], rate))
        if permit is None:   # one per channel and process, kept across jobs: its tokens are not wasted
            permit = _permits.setdefault((channel["id"], rate), ratelimit.Permit(f"channel:{channel['id']}", rate))
        if not permit.take(max_wait_s=20):
            return row, SendResult("retry", retry_after_s=1, reason="rate limit: the queue is long"), channel
        metrics.SENDS_IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            result = provider.send(message, channel, creds)
        except Exception as exc:   # a provider bug: the request may or may not have gone out
            log.warning("provider send raised", extra={"error": type(exc).__name__})
            result = SendResult("unknown", reason=f"the provider adapter raised {type(exc).__name__}")
        finally:
            metrics.SENDS_IN_FLIGHT.dec()
        metrics.provider_call(channel["kind"], time.perf_counter() - started, result.error_code)
        return row, result, channel

    results = _run_all(work, claimed, key=lambda item: item[0]["contact_id"])
    outcomes = {}
    with db.connection() as conn:
        # The common case in one statement for the whole batch; the rest one by one.
        sent = [(row, result) for row, result, _ in results if result.outcome == "sent"]
        outcomes.update(_record_sent(conn, account_id, sent))
        for row, result, channel in results:
            if result.outcome != "sent":
                outcomes[str(row["id"])] = _record(conn, account_id, row, result, channel_id=channel["id"])
    tally: dict[tuple[str, str], int] = {}
    for row, _, channel in results:
        key = (channel["kind"], outcomes[str(row["id"])])
        tally[key] = tally.get(key, 0) + 1
    for (kind, outcome), n in tally.items():
        metrics.SENDS.labels(kind, outcome).inc(n)
    return outcomes


def _run_all(work, items: list, key=None) -> list:
    """``[work(item) for item in items]`` on the send threads: a few long-lived lanes take the next item as
    they free up, instead of one future per item (a future, its lock and a thread wake-up per message cost
    the worker more than the rest of its bookkeeping for that message). Items with the same ``key(item)``
    (one customer's messages) go one after another on one lane, in order: a welcome before the menu it
    introduces."""
    results = [None] * len(items)
    groups: dict = {}
    for i, item in enumerate(items):
        groups.setdefault(key(item) if key else i, []).append(i)
    todo = iter(list(groups.values()))   # shared by the lanes: next() on it is atomic under the GIL

    def lane():
        for group in todo:
            for i in group:
                results[i] = work(items[i])

    lanes = [_executor().submit(lane) for _ in range(min(CONCURRENCY, len(groups)))]
    for done in lanes:
        done.result()   # re-raises what a lane raised, as map() did
    return results


_PAIR_REASON = "held back: this customer already got the most messages the provider allows in a short time"


def _pair_settings(channel: dict) -> tuple[float, float] | None:
    from webhooks import registry
    caps = getattr(registry.get(channel["kind"]), "capabilities", {}) or {}
    settings = channel["settings"] or {}
    # An explicit 0 turns the limit off (a provider that does not enforce it, or a test bench).
    interval = float(settings["pair_interval_s"] if settings.get("pair_interval_s") is not None
                     else caps.get("pair_interval_s") or 0)
    if interval <= 0:
        return None
    return interval, float(settings.get("pair_burst") or caps.get("pair_burst") or 1)


def _pair_waits(claimed, channels_by_id) -> dict:
    """Per-recipient limits (WhatsApp's pair rate), for the whole batch in one Redis round trip: the
    messages whose customer must wait, and how long. Buckets are named by channel and contact ids."""
    waits = {}
    by_limit: dict[tuple, list] = {}
    for row, _ in claimed:
        limit = _pair_settings(channels_by_id[row["channel_id"]][0])
        if limit is not None:
            by_limit.setdefault(limit, []).append(row)
    for (interval, burst), rows in by_limit.items():
        keys = [f"pair:{row['channel_id']}:{row['contact_id']}" for row in rows]
        for row, wait in zip(rows, ratelimit.try_take_each(keys, 1.0 / interval, burst)):
            if wait > 0:
                waits[row["id"]] = wait
    return waits


def send(account_id: str, message_id: str) -> str:
    """RQ job for one message (the sweeper's unit)."""
    return send_batch(account_id, [message_id]).get(str(message_id), "skipped")


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# Array parameters go as %b (binary): psycopg writes a 200-element uuid or bytea array in text several times
# slower, and the worker sends several per batch.
_CLAIM = ("UPDATE messages SET status = 'sending', status_rank = 1, attempts = attempts + 1, "
          "send_started_at = now(), updated_at = now() WHERE account_id = %s AND id IN ("
          "SELECT id FROM messages WHERE account_id = %s AND {which} AND direction = 'outbound' "
          "AND status IN ('queued', 'retry_scheduled') AND (next_attempt_at IS NULL OR next_attempt_at <= now()) "
          "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED) "
          "RETURNING id, channel_id, contact_id, kind, content_enc, attempts, created_at")


def _claim_many(account_id, message_ids):
    """Mark a batch 'sending' (committed before any provider call) and load what sending needs: these ids,
    or (``None``) the account's oldest messages due."""
    with db.connection() as conn:
        if message_ids is None:
            rows = conn.execute(_CLAIM.format(which="TRUE"), (account_id, account_id, BATCH)).fetchall()
        else:
            rows = conn.execute(_CLAIM.format(which="id = ANY(%b::uuid[])"),
                                (account_id, account_id, [_uuid(i) for i in message_ids], BATCH)).fetchall()
        if not rows:
            return [], {}
        # Oldest first, and in the order they were made within one transaction (uuid7 ids grow).
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        keys = _contact_keys(conn, account_id, {r["contact_id"] for r in rows})
        channels_by_id = {}
        for ch in conn.execute("SELECT id, kind, external_id, group_id, settings, status FROM channels "
                               "WHERE account_id = %s AND id = ANY(%b::uuid[])",
                               (account_id, list({r["channel_id"] for r in rows}))).fetchall():
            channels_by_id[ch["id"]] = (dict(ch), channels.load_credentials(conn, account_id=account_id,
                                                                            channel_id=ch["id"]))
        claimed = []
        for row in rows:
            row = dict(row, key=keys[row["contact_id"]])
            try:
                claimed.append((row, _message_for(conn, account_id, row)))
            except (LookupError, uploads.NotConfigured, Unreadable) as exc:
                claimed.append((row, exc))
            except Exception as exc:   # one unreadable row must not fail (and so block) the whole batch
                log.warning("stored message unreadable", extra={"error": type(exc).__name__})
                claimed.append((row, Unreadable(f"the stored message could not be read ({type(exc).__name__}); "
                                                "nothing was sent")))
        claimed = _stop_unsendable_templates(conn, account_id, claimed, channels_by_id)
    return claimed, channels_by_id


def _contact_keys(conn, account_id, contact_ids) -> dict:
    """Each contact's data key, unwrapped from one query for the whole batch: loading them one by one is a
    round trip per message, as a batch's recipients rarely repeat (and other processes created the keys,
    so this one's key cache has not seen them)."""
    keys = {}
    for r in conn.execute(
            "SELECT c.id, c.data_key_id, k.master_kid, k.wrapped FROM contacts c LEFT JOIN data_keys k "
            "ON k.account_id = c.account_id AND k.id = c.data_key_id "
            "WHERE c.account_id = %s AND c.id = ANY(%b::uuid[])", (account_id, list(contact_ids))).fetchall():
        if r["wrapped"] is None:   # shredded (or gone): the key store decides, as it always has
            keys[r["id"]] = keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
        else:
            keys[r["id"]] = DataKey(r["data_key_id"], runtime.keyring().unwrap(
                r["master_kid"], r["wrapped"], data_key_aad(account_id, r["data_key_id"])))
    return keys


class TemplateNotSendable(Exception):
    code = "template_not_sendable"


class Unreadable(Exception):
    code = "unreadable"


def _stop_unsendable_templates(conn, account_id, claimed, channels_by_id) -> list:
    """Templates Meta paused or disabled after these messages were queued: they fail here, with the
    catalog's reason, instead of at Meta (132015/132016). One query for the batch."""
    wanted = {}
    for i, (row, message) in enumerate(claimed):
        if isinstance(message, OutboundMessage) and message.kind == "template":
            waba = channels_by_id[row["channel_id"]][0].get("group_id")
            if waba:
                wanted[i] = (waba, message.content.get("name"), message.content.get("language"))
    if not wanted:
        return claimed
    states = {(r["waba_id"], r["name"], r["language"]): r for r in conn.execute(
        "SELECT waba_id, name, language, status, status_reason FROM templates WHERE account_id = %s "
        "AND (waba_id, name, language) IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
        (account_id, [w[0] for w in wanted.values()], [w[1] for w in wanted.values()],
         [w[2] for w in wanted.values()])).fetchall()}
    out = list(claimed)
    for i, key in wanted.items():
        state = states.get(key)
        if state is not None and state["status"] != "APPROVED":
            why = f" ({state['status_reason']})" if state["status_reason"] else ""
            out[i] = (claimed[i][0], TemplateNotSendable(
                f"template {key[1]!r} ({key[2]}) became {state['status']}{why} at Meta after this message was "
                "queued; send it again once the template is approved, or use another"))
    return out


def _message_for(conn, account_id, row) -> OutboundMessage:
    """What the provider adapter sends for a stored message (``row`` has its content and the contact's key).
    Raises LookupError / uploads.NotConfigured when its upload cannot be linked."""
    key = row["key"]
    if row["content_enc"] is None:
        raise Unreadable("the message has no content to send; nothing was sent")
    content = json.loads(key.decrypt_text(row["content_enc"], field_aad("messages", "content", account_id,
                                                                        row["id"])))
    to = content.pop("to")
    reply_to = content.pop("reply_to_provider_id", None)
    tag = content.pop("tag", None)
    if outbound.upload_id(row["kind"], content) is not None:
        # Our own upload: the provider fetches it from a signed link made now (never stored).
        content = uploads.resolve_for_send(conn, account_id=account_id, content=content)
    return OutboundMessage(id=str(row["id"]), to=to["address"], to_kind=to["kind"], kind=row["kind"],
                           content=content, reply_to=reply_to, tag=tag)


def _backoff_s(attempts: int, retry_after: float | None) -> float:
    """Exponential with jitter from GATEWAY_SEND_BACKOFF_S (2 s, 4 s, 8 s …, at most an hour); never
    sooner than the provider's Retry-After."""
    first = float(os.environ.get("GATEWAY_SEND_BACKOFF_S", "2"))
    base = min(3600.0, first * 2.0 ** max(0, attempts - 1))
    return max(retry_after or 0.0, base * random.uniform(0.5, 1.5))


def _record(conn, account_id, row, result: SendResult, channel_id=None) -> str:
    """The outcome of one send attempt, in the caller's transaction."""
    now = datetime.now(timezone.utc)
    if result.outcome == "sent":
        return _record_sent(conn, account_id, [(row, result)])[str(row["id"])]
    if result.outcome == "unknown":
        conn.execute("UPDATE messages SET last_error = %s, updated_at = now() WHERE account_id = %s AND id = %s",
                     (f"outcome unknown: {result.reason or 'no answer'}; reconciling before any resend",
                      account_id, row["id"]))
        return "unknown"
    if result.reason == _PAIR_REASON:
        # Nothing went out: the attempt is given back, so a chatty conversation cannot exhaust the retries.
        conn.execute(
            "UPDATE messages SET status = 'retry_scheduled', status_rank = 0, attempts = attempts - 1, "
            "last_error = %s, next_attempt_at = now() + make_interval(secs => %s), updated_at = now() "
            "WHERE account_id = %s AND id = %s AND status = 'sending'",
            (result.reason, result.retry_after_s, account_id, row["id"]))
        return "held"
    too_old = now - row["created_at"] > MAX_AGE
    if result.outcome == "retry" and row["attempts"] < MAX_ATTEMPTS and not too_old:
        conn.execute(
            "UPDATE messages SET status = 'retry_scheduled', status_rank = 0, last_error = %s, "
            "next_attempt_at = now() + make_interval(secs => %s), updated_at = now() "
            "WHERE account_id = %s AND id = %s AND status = 'sending'",
            (_reason(result), _backoff_s(row["attempts"], result.retry_after_s), account_id, row["id"]))
        return "retry"
    reason = _reason(result)
    if result.outcome == "retry":
        reason = f"gave up after {row['attempts']} attempts: {reason}"
    failed = conn.execute(
        "UPDATE messages SET status = 'failed', status_rank = 6, error_code = %s, error_reason = %s, "
        "last_error = %s, updated_at = now() WHERE account_id = %s AND id = %s "
        "RETURNING id, thread_id, contact_id, channel_id",
        (result.error_code, reason, reason, account_id, row["id"])).fetchone()
    _event(conn, account_id, row["id"], "failed", {"error_code": result.error_code, "error_reason": reason})
    messages.emit_status(conn, account_id=account_id, message=failed, status="failed",
                         error_code=result.error_code, reason=reason)
    if result.opted_out:
        _record_opt_out(conn, account_id, row, result.error_code)
    if result.channel_problem and channel_id is not None:
        paused = conn.execute("UPDATE channels SET status = 'paused', paused_reason = %s, updated_at = now() "
                              "WHERE account_id = %s AND id = %s AND status = 'active' RETURNING kind",
                              (reason, account_id, channel_id)).fetchone()
        if paused is not None:
            channels.emit_status_changed(conn, account_id=account_id, channel_id=channel_id, kind=paused["kind"],
                                         status="paused", previous="active", reason=reason)
        channels.forget_routes()
    return "failed"


def _record_sent(conn, account_id, sent: list[tuple[dict, SendResult]]) -> dict[str, str]:
    """Messages the provider accepted: 'sent' with their provider ids (unless a status webhook already moved
    them further) and an 'accepted' event each, in one statement for the whole batch; then message.sent for
    the batch in one more."""
    if not sent:
        return {}
    ids, bidxs, encs, attempts = [], [], [], []
    # messages.provider_id_bidx, with the account's sub-key derived once for the batch, not per message.
    bidx = runtime.keyring().blind_indexer(account_id)
    for row, result in sent:
        pid = result.provider_message_id
        key = row.get("key") or _contact_key(conn, account_id, row["contact_id"])
        ids.append(row["id"])
        attempts.append(row["attempts"])
        bidxs.append(bidx("provider_message_id", pid) if pid else None)
        encs.append(key.encrypt(pid, field_aad("messages", "provider_id", account_id, row["id"])) if pid else None)
    recorded = conn.execute(
        "WITH v AS (SELECT * FROM unnest(%(ids)b::uuid[], %(bidx)b::bytea[], %(enc)b::bytea[], %(att)b::int[], "
        "%(ev)b::uuid[]) AS v(id, bidx, enc, attempt, event_id)), "
        "u AS (UPDATE messages m SET status = CASE WHEN m.status_rank > 2 THEN m.status ELSE 'sent' END, "
        "status_rank = greatest(m.status_rank, 2), provider_id_bidx = coalesce(v.bidx, m.provider_id_bidx), "
        # sent_at keeps the first proof: a status webhook that adopted the message while the provider's answer
        # was on its way (messages._adopt) recorded the acceptance, and its message.sent, already.
        "provider_id_enc = coalesce(v.enc, m.provider_id_enc), sent_at = coalesce(m.sent_at, now()), "
        "last_error = NULL, updated_at = now() FROM v WHERE m.account_id = %(a)s AND m.id = v.id "
        "RETURNING m.id, m.channel_id, m.provider_id_bidx, m.thread_id, m.contact_id, m.kind, m.automated, "
        "m.idempotency_key, m.sent_at = now() AS first), "
        "e AS (INSERT INTO message_events (account_id, id, message_id, status, detail, provider_ts) "
        "SELECT %(a)s, v.event_id, v.id, 'accepted', jsonb_build_object('attempt', v.attempt), "
        "'attempt-' || v.attempt FROM v ON CONFLICT DO NOTHING) "
        "SELECT u.id, u.channel_id, u.provider_id_bidx, u.thread_id, u.contact_id, u.kind, u.automated, u.first, "
        "ch.kind AS channel_kind, cr.campaign_id, "
        # A status webhook that beat this commit waited in pending_statuses.
        "u.provider_id_bidx IS NOT NULL AND EXISTS (SELECT 1 FROM pending_statuses p WHERE p.account_id = %(a)s "
        "AND p.channel_id = u.channel_id AND p.provider_id_bidx = u.provider_id_bidx) AS waiting "
        "FROM u JOIN channels ch ON ch.account_id = %(a)s AND ch.id = u.channel_id "
        f"{messages.campaign_join('u', '%(a)s')}",
        {"a": account_id, "ids": ids, "bidx": bidxs, "enc": encs, "att": attempts,
         "ev": [uuid7() for _ in ids]}).fetchall()
    by_id = {r["id"]: r for r in recorded}
    # In the batch's order, and before the statuses that waited: delivered follows sent in the feed too.
    messages.emit_sent(conn, account_id=account_id, rows=[by_id[i] for i in ids if i in by_id and by_id[i]["first"]])
    for w in recorded:
        if w["waiting"]:
            messages._apply_pending(conn, account_id, w["channel_id"], bytes(w["provider_id_bidx"]), w["id"])
    return {str(i): "sent" for i in ids}


def _reason(result: SendResult) -> str:
    parts = [p for p in (result.error_code and f"[{result.error_code}]", result.reason) if p]
    return " ".join(parts) or result.outcome


def _contact_key(conn, account_id, contact_id):
    row = conn.execute("SELECT data_key_id FROM contacts WHERE account_id = %s AND id = %s",
                       (account_id, contact_id)).fetchone()
    return keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])


def _event(conn, account_id, message_id, status: str, detail: dict) -> None:
    conn.execute("INSERT INTO message_events (account_id, id, message_id, status, detail, provider_ts) "
                 "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (account_id, uuid7(), message_id, status, Jsonb(detail), f"attempt-{detail.get('attempt', '')}"))


def _record_opt_out(conn, account_id, row, code) -> None:
    """The provider says the customer stopped messages (131050: marketing; 21610: everything on the channel):
    the ledger records it, proof being the provider's code, in the transaction that fails the message."""
    channel = conn.execute("SELECT kind FROM channels WHERE account_id = %s AND id = %s",
                           (account_id, row["channel_id"])).fetchone()
    consent.record_provider_opt_out(conn, account_id=account_id, contact_id=row["contact_id"],
                                    channel_kind=channel["kind"], code=code)


def reconcile(account_id: str, message_id: str) -> str:
    """Sweeper job for a message left 'sending' (crash or unknown outcome) longer than the reconcile wait.

    Proof it went out settles it as sent: a status webhook that echoed our id (WhatsApp's
    biz_opaque_callback_data, a Messenger echo's metadata) adopted it already, or waits in
    pending_statuses; or the provider, where it can be asked (Twilio's Messages list), has it. A provider
    that cannot answer now is asked again on the next pass. Only a clean "no" (or a provider that cannot
    be asked, after the wait) schedules the message again - the one place a resend can happen."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT m.id, m.channel_id, m.contact_id, m.kind, m.content_enc, m.attempts, m.created_at, "
            "m.send_started_at, c.data_key_id FROM messages m JOIN contacts c ON c.account_id = m.account_id "
            "AND c.id = m.contact_id WHERE m.account_id = %s AND m.id = %s AND m.status = 'sending' "
            "FOR UPDATE OF m SKIP LOCKED", (account_id, message_id)).fetchone()
        if row is None:
            return "skipped"
        echoed = conn.execute(
            "SELECT provider_id_bidx FROM pending_statuses WHERE account_id = %s AND channel_id = %s "
            "AND detail->>'callback_data' = %s LIMIT 1", (account_id, row["channel_id"], str(message_id))).fetchone()
        if echoed is not None:
            conn.execute("UPDATE messages SET status = 'sent', status_rank = greatest(status_rank, 2), "
                         "provider_id_bidx = %s, last_error = NULL, sent_at = now(), updated_at = now() "
                         "WHERE account_id = %s AND id = %s", (echoed["provider_id_bidx"], account_id, message_id))
            messages.emit_sent_by_id(conn, account_id=account_id, message_ids=[message_id])
            messages._apply_pending(conn, account_id, row["channel_id"], bytes(echoed["provider_id_bidx"]), message_id)
            return "sent"
        asked = _ask_provider(conn, account_id, row)
        if asked is not None and asked.outcome == "sent":
            _record_sent(conn, account_id, [(dict(row, key=keystore.load_key(
                conn, account_id=account_id, key_id=row["data_key_id"])), asked)])
            return "sent"
        if asked is not None and datetime.now(timezone.utc) - row["created_at"] > MAX_AGE:
            reason = f"gave up: the provider could not say for {MAX_AGE} whether it took the message ({asked.reason})"
            failed = conn.execute(
                "UPDATE messages SET status = 'failed', status_rank = 6, error_code = 'unknown_outcome', "
                "error_reason = %s, last_error = %s, updated_at = now() WHERE account_id = %s AND id = %s "
                "RETURNING id, thread_id, contact_id, channel_id", (reason, reason, account_id, message_id)).fetchone()
            messages.emit_status(conn, account_id=account_id, message=failed, status="failed",
                                 error_code="unknown_outcome", reason=reason)
            return "failed"
        if asked is not None:   # the provider could not say: no resend on a guess
            conn.execute("UPDATE messages SET last_error = %s, updated_at = now() WHERE account_id = %s AND id = %s",
                         (f"outcome unknown; asking the provider again: {asked.reason}", account_id, message_id))
            return "waiting"
        conn.execute("UPDATE messages SET status = 'retry_scheduled', status_rank = 0, next_attempt_at = now(), "
                     "last_error = 'no proof the last attempt reached the provider; sending again', "
                     "updated_at = now() WHERE account_id = %s AND id = %s", (account_id, message_id))
    outbound.enqueue(account_id, message_id)
    return "rescheduled"


def _ask_provider(conn, account_id, row) -> SendResult | None:
    """The provider's own answer on whether the attempt reached it, where it can be asked; None otherwise."""
    from webhooks import registry
    channel = conn.execute("SELECT id, kind, external_id, settings, status FROM channels WHERE account_id = %s "
                           "AND id = %s", (account_id, row["channel_id"])).fetchone()
    provider = registry.get(channel["kind"])
    if not hasattr(provider, "find_sent"):
        return None
    keyed = dict(row, key=keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"]))
    try:
        message = _message_for(conn, account_id, keyed)
    except (LookupError, uploads.NotConfigured, Unreadable, ValueError):
        return None
    creds = channels.load_credentials(conn, account_id=account_id, channel_id=channel["id"])
    since = row["send_started_at"] or row["created_at"]
    try:
        return provider.find_sent(message, dict(channel), creds, since)
    except Exception as exc:   # an adapter bug must not turn into a resend
        log.warning("provider find_sent raised", extra={"error": type(exc).__name__})
        return SendResult("unknown", reason=f"the provider adapter raised {type(exc).__name__}")

"""``POST /graph/v{N}/{phone-number-id}/messages``: a Cloud API send, through the gateway's one send gate.

Each request becomes a message exactly as ``POST /v1/messages`` makes one (``outbound.accept``: the same
gate, consent, window, catalog checks, encryption, at-most-once send) and answers in the Cloud API's shape
at once, with the facade's id for the message (``ids``). An ``Idempotency-Key`` header, or the same body
with the same ``biz_opaque_callback_data`` within a day, answers again with the first answer and sends
nothing more: an integration retrying a timed-out request does not message the customer twice.
"""
from __future__ import annotations

import math
import os
import threading
import time

from flask import request

from gateway import messages, outbound, ratelimit, send_gate
from gateway.facade import ids, translate
from gateway.facade.auth import graph, whatsapp_channel
from gateway.facade.errors import GraphError, invalid_parameter, refused
from gateway.facade.views import bp
from templates_catalog import store

# The same request body with the same biz_opaque_callback_data is a retry within this long (a day: longer
# than any client's retry loop, shorter than a campaign's reuse of one callback value for next week's send).
OPAQUE_WINDOW_S = 24 * 3600
DEFAULT_RATE_PER_S = 80.0      # Meta's default throughput per number (protocols.md B4)
DEFAULT_BACKLOG_S = 600.0      # GATEWAY_FACADE_BACKLOG_S: how far ahead of the number's rate the facade takes sends
_tokens: dict = {}             # channel id → throttle tokens this process took from the shared bucket, unspent
_tokens_lock = threading.Lock()


@bp.post("/<version>/<phone_number_id>/messages")
@graph(scope="messages:send")
def send(conn, principal, phone_number_id):
    """Send a message (any Cloud API type), or mark one read."""
    channel = whatsapp_channel(conn, principal.account_id, phone_number_id)
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    if body is None:
        raise GraphError(100, "Invalid parameter", "send the Cloud API body as JSON with Content-Type: "
                         "application/json")
    wanted = translate.read(body)
    if isinstance(wanted, translate.MarkRead):
        return _mark_read(conn, principal.account_id, channel, wanted)
    return _send(conn, principal.account_id, channel, wanted, body)


def _send(conn, account_id, channel: dict, wanted: translate.Outbound, body: dict):
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise invalid_parameter("the Idempotency-Key header must be 1 to 255 characters")
    if key is None and "biz_opaque_callback_data" in body:
        key, earlier = _opaque_retry(conn, account_id, channel["id"], body)
        if earlier is not None:
            return _answer(wanted, earlier, _wa_id(wanted.to))
    _throttle(channel)
    content = dict(wanted.content)
    if wanted.react_to is not None:
        content["message_id"] = _ours(conn, account_id, channel["id"], wanted.react_to, "reaction['message_id']")
    reply_to = (None if wanted.reply_to is None
                else _ours(conn, account_id, channel["id"], wanted.reply_to, "context['message_id']"))
    if wanted.check_parameters is not None:
        content["check_parameters"] = wanted.check_parameters
    try:
        accepted, created = outbound.accept(
            conn, account_id, channel_id=channel["id"], kind=wanted.kind, content=content,
            to={"kind": "phone", "address": wanted.to}, reply_to_id=reply_to,
            purpose=_purpose(conn, account_id, channel, wanted), idempotency_key=key, body_for_hash=body)
    except send_gate.Refused as exc:
        raise refused(exc) from None
    except outbound.InvalidRecipient as exc:
        raise translate.invalid("to", f"{exc}; send the number in international form (digits, '+' optional)")
    except outbound.IdempotencyConflict as exc:
        raise GraphError(100, "Invalid parameter", str(exc), status=409) from None
    except outbound.NotFound as exc:
        raise invalid_parameter(str(exc)) from None
    message_id = accepted["id"] if created else accepted
    if created:
        conn.commit()
        outbound.enqueue(account_id, message_id)
    return _answer(wanted, message_id, _wa_id(wanted.to))


def _throttle(channel: dict) -> None:
    """Meta refuses a number's sends beyond its throughput with 130429; the gateway queues them and paces the
    provider instead, so a burst goes through. But an integration that sends faster than the number can
    deliver, for longer than GATEWAY_FACADE_BACKLOG_S worth of its rate, only builds a queue whose last
    message would leave too late: it gets 130429, with the wait in Retry-After, as from Meta."""
    rate = float((channel["settings"] or {}).get("rate_per_s") or DEFAULT_RATE_PER_S)
    ahead = float(os.environ.get("GATEWAY_FACADE_BACKLOG_S") or DEFAULT_BACKLOG_S)
    # Tokens come from the shared bucket in chunks of 2 % of a second's rate and are spent here, so a busy
    # number costs one Redis call per chunk rather than per send (a slow one still one per send).
    chunk = max(1.0, math.floor(rate * 0.02))
    with _tokens_lock:
        left = _tokens.get(channel["id"], 0.0)
        if left >= 1:
            _tokens[channel["id"]] = left - 1
            return
    wait = ratelimit.try_take(f"facade:{channel['id']}", rate, burst=rate * ahead, tokens=chunk)
    if wait == 0:
        with _tokens_lock:
            _tokens[channel["id"]] = _tokens.get(channel["id"], 0.0) + chunk - 1
        return
    raise GraphError(130429, "Rate limit hit", f"this phone number sends {rate:g} messages per second and "
                     f"already has {ahead:g} seconds of messages waiting; retry after {math.ceil(wait)} s, or "
                     "spread the sends out", status=429, headers={"Retry-After": str(math.ceil(wait))},
                     extra={"is_transient": True})


def _answer(wanted: translate.Outbound, message_id, wa_id: str) -> dict:
    sent = {"id": ids.mint(message_id)}
    if wanted.kind == "template":
        sent["message_status"] = "accepted"
    return {"messaging_product": "whatsapp", "contacts": [{"input": wanted.to, "wa_id": wa_id}],
            "messages": [sent]}


def _wa_id(to: str) -> str:
    return "".join(ch for ch in to if ch.isdigit())


def _purpose(conn, account_id, channel: dict, wanted: translate.Outbound) -> str:
    """What the send is for, as the consent rules read it: a MARKETING template needs the customer's opt-in;
    everything else is the conversation's own (transactional)."""
    if wanted.template is None or not channel.get("group_id"):
        return "transactional"
    name, language = wanted.template
    row = store.get(conn, account_id=account_id, waba_id=channel["group_id"], name=name, language=language)
    return "marketing" if row is not None and (row["category"] or "").upper() == "MARKETING" else "transactional"


def _ours(conn, account_id, channel_id, wamid: str, param: str):
    """The gateway's id of the message a wamid names on this channel: one the facade handed out, or a
    provider id (a customer's message, or one the gateway sent). Another account's is not found."""
    mine = ids.parse(wamid)
    if mine is not None:
        row = conn.execute("SELECT id FROM messages WHERE account_id = %s AND id = %s AND channel_id = %s",
                           (account_id, mine, channel_id)).fetchone()
    else:
        row = conn.execute("SELECT id FROM messages WHERE account_id = %s AND channel_id = %s "
                           "AND provider_id_bidx = %s",
                           (account_id, channel_id, messages.provider_id_bidx(account_id, wamid))).fetchone()
    if row is None:
        raise translate.invalid(param, f"{param} names no message of this phone number; use the id of a message "
                                "it sent or received")
    return row["id"]


def _opaque_retry(conn, account_id, channel_id, body: dict):
    """(key for this request, the message an identical earlier request made within the window, or None)."""
    digest = outbound.request_hash(body).hex()[:40]
    day = int(time.time() // OPAQUE_WINDOW_S)
    keys = [f"graph:{channel_id}:{digest}:{d}" for d in (day, day - 1)]
    rows = conn.execute("SELECT id FROM messages WHERE account_id = %s AND idempotency_key = ANY(%s) "
                        "AND created_at > now() - make_interval(secs => %s) ORDER BY created_at LIMIT 1",
                        (account_id, keys, OPAQUE_WINDOW_S)).fetchall()
    return keys[0], (rows[0]["id"] if rows else None)


def _mark_read(conn, account_id, channel: dict, wanted: translate.MarkRead):
    target = _ours(conn, account_id, channel["id"], wanted.message_id, "message_id")
    found = conn.execute("SELECT contact_id, direction FROM messages WHERE account_id = %s AND id = %s",
                         (account_id, target)).fetchone()
    if found["direction"] != "inbound":
        raise translate.invalid("message_id", "only a customer's message can be marked read")
    provider_id = outbound.provider_id_of(conn, account_id, target)
    content = {"message_id": provider_id}
    if wanted.typing_indicator:
        content["typing_indicator"] = wanted.typing_indicator
    try:
        # One receipt per message; a typing indicator is a new signal each time it is asked for.
        receipt, created = outbound.accept(
            conn, account_id, channel_id=channel["id"], kind="read", content=content,
            contact_id=found["contact_id"], idempotency_key=None if wanted.typing_indicator else f"read:{target}",
            body_for_hash={"read": str(target)})
    except send_gate.Refused as exc:
        raise refused(exc) from None
    if created:
        conn.commit()
        outbound.enqueue(account_id, receipt["id"])
    return {"success": True}

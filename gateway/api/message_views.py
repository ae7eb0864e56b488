"""REST views for sending: POST /v1/messages (through the one send gate), reading a message, read receipts."""
from __future__ import annotations

from flask import request
from marshmallow import ValidationError

from gateway import messages, outbound, send_gate
from gateway.api import paging
from gateway.api.schemas import BatchMessage, MessageCreate
from gateway.api.views import bp
from gateway.http import api, json_body, parse_uuid
from gateway.problems import Problem, field_errors, invalid, problem_document

_CREATE = MessageCreate()   # built once: constructing nested schemas costs more than loading a body
_BATCH_ITEM = BatchMessage()
BATCH_MAX = 100
_MESSAGE_COLUMNS = messages.MESSAGE_COLUMNS + ", m.channel_id, m.attempts, m.next_attempt_at, m.last_error, m.purpose"


def _refused(exc: send_gate.Refused) -> Problem:
    extra = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in exc.extra.items()}
    return Problem(exc.status, exc.rule.replace("_", " ").capitalize(), exc.detail, slug=exc.rule, extra=extra)


def _problem(exc: Exception, pointer: str = "") -> Problem:
    """The problem a refused message answers with (the whole request, or its item in a batch)."""
    if isinstance(exc, outbound.InvalidRecipient):
        return Problem(422, "Validation Failed", str(exc), slug="validation-failed",
                       errors=[{"pointer": f"{pointer}/to/address", "detail": str(exc)}])
    if isinstance(exc, send_gate.Refused):
        return _refused(exc)
    if isinstance(exc, outbound.IdempotencyConflict):
        return Problem(409, "Conflict", str(exc), slug="idempotency-key-reused")
    return Problem(404, "Not Found", str(exc), slug=getattr(exc, "slug", None))


def _message(conn, principal, message_id) -> dict:
    row = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN contacts c ON c.account_id = m.account_id "
        "AND c.id = m.contact_id WHERE m.account_id = %s AND m.id = %s",
        (principal.account_id, message_id)).fetchone()
    if row is None:
        raise Problem(404, "Not Found", f"no message with id {message_id} in this account")
    out = messages.decrypt_message(conn, principal.account_id, row)
    messages._attach_history(conn, principal.account_id, [out])
    out.update(channel_id=row["channel_id"], attempts=row["attempts"], next_attempt_at=row["next_attempt_at"],
               last_error=row["last_error"], purpose=row["purpose"])
    return out


@bp.post("/messages")
@api(scope="messages:send")
def send_message(conn, principal):
    body = json_body(_CREATE)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise Problem(400, "Bad Idempotency Key", "Idempotency-Key must be 1 to 255 characters",
                      slug="bad-idempotency-key")
    kind = body["type"]
    content = body[kind] if kind != "contacts" else {"contacts": body["contacts"]}
    content = dict(content)
    try:
        accepted, created = outbound.accept(
            conn, principal.account_id, channel_id=body["channel_id"], kind=kind, content=content,
            contact_id=body.get("contact_id"), to=body.get("to"), reply_to_id=body.get("reply_to"),
            purpose=body["purpose"], tag=body.get("tag"), idempotency_key=key,
            body_for_hash=request.get_json())
    except (outbound.NotFound, outbound.IdempotencyConflict, send_gate.Refused, outbound.InvalidRecipient) as exc:
        raise _problem(exc) from None
    if not created:
        return _message(conn, principal, accepted), 200
    conn.commit()
    outbound.enqueue(principal.account_id, accepted["id"])
    return _queued(accepted, kind), 202


def _queued(accepted: dict, kind: str) -> dict:
    """A new message as GET /v1/messages/{id} shows it, without reading it back."""
    return {"id": accepted["id"], "thread_id": accepted["thread_id"], "channel_id": accepted["channel_id"],
            "direction": "outbound", "kind": accepted.get("kind") or kind, "text": accepted["body"], "content": accepted["content"],
            "provider_message_id": None, "reply_to_id": None, "status": "queued", "error": None,
            "occurred_at": accepted["occurred_at"], "created_at": accepted["created_at"],
            "updated_at": accepted["updated_at"], "statuses": [], "media": [], "attempts": 0,
            "next_attempt_at": None, "last_error": None, "purpose": accepted["purpose"]}


@bp.post("/messages/batch")
@api(scope="messages:send")
def send_batch(conn, principal):
    """Up to BATCH_MAX messages in one request, each through the same gate as POST /v1/messages.

    Each item succeeds or fails on its own: the answer lists, in order, each item's status with its message
    or its problem. Items may carry their own ``idempotency_key`` (same rules as the header)."""
    if not request.is_json:
        raise Problem(415, "Unsupported Media Type",
                      "send the body as JSON with the header Content-Type: application/json")
    data = request.get_json(silent=True)
    items = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= BATCH_MAX or set(data) - {"messages"}:
        raise Problem(422, "Validation Failed", f"send {{\"messages\": [...]}} with 1 to {BATCH_MAX} messages, "
                      "each shaped as the body of POST /v1/messages", slug="validation-failed",
                      errors=[{"pointer": "/messages", "detail": f"a list of 1 to {BATCH_MAX} messages"}])
    results: list[dict | None] = [None] * len(items)
    drafts, where = [], []
    for i, item in enumerate(items):
        try:
            body = _BATCH_ITEM.load(item if isinstance(item, dict) else {})
        except ValidationError as exc:
            errors = field_errors(exc.messages, f"/messages/{i}")
            results[i] = _item_problem(i, invalid(errors))
            continue
        kind = body["type"]
        content = dict(body[kind]) if kind != "contacts" else {"contacts": body["contacts"]}
        key = body.get("idempotency_key")
        drafts.append(outbound.Draft(
            channel_id=body["channel_id"], kind=kind, content=content, contact_id=body.get("contact_id"),
            to=body.get("to"), reply_to_id=body.get("reply_to"), purpose=body["purpose"], tag=body.get("tag"),
            idempotency_key=key, request_hash=outbound.request_hash(item) if key else None))
        where.append(i)
    outcomes = outbound.accept_many(conn, principal.account_id, drafts)
    conn.commit()
    created = []
    for i, draft, outcome in zip(where, drafts, outcomes):
        if isinstance(outcome, Exception):
            results[i] = _item_problem(i, _problem(outcome, f"/messages/{i}"))
        elif not outcome.created:
            results[i] = {"index": i, "status": 200, "message": {"id": outcome.message["id"]}}
        else:
            accepted = dict(outcome.message, contact_id=outcome.contact_id, channel_id=outcome.channel_id,
                            content=outcome.content, purpose=draft.purpose)
            results[i] = {"index": i, "status": 202, "message": _queued(accepted, draft.kind)}
            created.append(accepted["id"])
    for message_id in created:
        outbound.enqueue(principal.account_id, message_id)
    return {"data": results, "accepted": len(created),
            "refused": sum(1 for r in results if r["status"] >= 400)}, 200


def _item_problem(index: int, problem: Problem) -> dict:
    return {"index": index, "status": problem.status,
            "problem": problem_document(problem.status, problem.title, problem.detail, slug=problem.slug,
                                        errors=problem.errors, extra=problem.extra)}


@bp.get("/messages/<message_id>")
@api(scope="messages:read")
def get_message(conn, principal, message_id):
    return _message(conn, principal, parse_uuid(message_id, "message"))


@bp.get("/messages")
@api(scope="messages:read")
def list_messages(conn, principal):
    """Outbound messages by state, newest change first (``state=failed`` is the dead-letter list)."""
    state = request.args.get("state", "failed")
    if state not in ("queued", "sending", "retry_scheduled", "sent", "delivered", "read", "failed"):
        raise Problem(400, "Bad Filter", "state must be one of queued, sending, retry_scheduled, sent, delivered, "
                      "read, failed", slug="bad-filter")
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN contacts c ON c.account_id = m.account_id "
        "AND c.id = m.contact_id WHERE m.account_id = %s AND m.direction = 'outbound' AND m.status = %s "
        "ORDER BY m.updated_at DESC, m.id DESC LIMIT %s", (principal.account_id, state, paging.limit())).fetchall()
    out = []
    for row in rows:
        m = messages.decrypt_message(conn, principal.account_id, row)
        m.update(channel_id=row["channel_id"], attempts=row["attempts"], last_error=row["last_error"])
        out.append(m)
    return {"data": out}


@bp.post("/messages/<message_id>/read")
@api(scope="messages:send")
def mark_read(conn, principal, message_id):
    """Send a read receipt for an inbound message (WhatsApp blue ticks, Messenger seen)."""
    found = conn.execute("SELECT channel_id, contact_id, direction FROM messages WHERE account_id = %s AND id = %s",
                         (principal.account_id, parse_uuid(message_id, "message"))).fetchone()
    if found is None or found["direction"] != "inbound":
        raise Problem(404, "Not Found", f"no inbound message with id {message_id} in this account")
    target = outbound.provider_id_of(conn, principal.account_id, message_id)
    try:
        receipt, created = outbound.accept(
            conn, principal.account_id, channel_id=found["channel_id"], kind="read",
            content={"message_id": target}, contact_id=found["contact_id"],
            idempotency_key=f"read:{message_id}", body_for_hash={"read": str(message_id)})
    except send_gate.Refused as exc:
        raise _refused(exc) from None
    receipt_id = receipt["id"] if created else receipt
    if created:
        conn.commit()
        outbound.enqueue(principal.account_id, receipt_id)
    return {"id": receipt_id, "status": "queued" if created else "already requested"}, 202

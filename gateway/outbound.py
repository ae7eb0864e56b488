"""Accepting outbound messages: resolve the recipient, honour Idempotency-Key, pass the gate, record, enqueue.

The message rows are committed as ``queued`` (content encrypted under each
contact's key) before a job naming only their ids is handed to Redis; the send
worker does the rest. A refused message writes no row.

Accepting costs a fixed number of statements whatever the number of messages
(one read of everything the gate needs, one insert): on small machines each
round trip to PostgreSQL costs as much as the rest of the work, so a batch of
a hundred messages is accepted for little more than one.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from gateway import consent, contacts, jobs, keystore, merges, messages, send_gate, uploads
from gateway.crypto import field_aad

SEND_BATCH_JOB = "gateway.send_worker.send_batch"
_enqueuer = jobs.Coalescer("send", SEND_BATCH_JOB, kind="send", linger_s=0.005)


class NotFound(LookupError):
    def __init__(self, detail: str, slug: str = "not-found"):
        super().__init__(detail)
        self.slug = slug


class IdempotencyConflict(Exception):
    pass


class InvalidRecipient(ValueError):
    """The address given in ``to`` is not one the channel can reach (not a phone number, say)."""


@dataclass
class Draft:
    """One message to accept, as the API (or an automation, or a campaign) asks for it."""
    channel_id: object
    kind: str
    content: dict
    contact_id: object = None
    to: dict | None = None               # {"kind", "address"} when no contact id is given
    reply_to_id: object = None           # our id of the message this one answers
    purpose: str = "transactional"
    tag: str | None = None
    idempotency_key: str | None = None
    request_hash: bytes | None = None


@dataclass
class Accepted:
    message: dict                        # the new row (id, thread_id, status, times …) with contact and channel
    created: bool = True                 # False: an earlier request with the same Idempotency-Key made it
    contact_id: object = None
    channel_id: object = None
    content: dict = field(default_factory=dict)


def _identity_kinds(channel_kind: str) -> tuple[str, ...]:
    return tuple(send_gate.capabilities(channel_kind).get("identity_kinds", ("phone",)))


def channel_for_send(conn, account_id, channel_id) -> dict:
    row = conn.execute(
        "SELECT id, kind, external_id, status, paused_reason, (credentials_enc IS NOT NULL) AS has_credentials "
        "FROM channels WHERE account_id = %s AND id = %s", (account_id, channel_id)).fetchone()
    if row is None:
        raise NotFound(f"no channel with id {channel_id} in this account")
    return row


# Everything accepting a message needs to know, in one round trip (each costs as much as the rest of the
# request): the channel; the contact through a merge, its data key, and every identity of it and of the
# contacts merged into it; its thread on the channel; and its latest consent action per purpose.
_CONTEXT = (
    "SELECT q.ord, ch.id AS channel_id, ch.kind AS channel_kind, ch.external_id, ch.group_id, ch.status, "
    "ch.paused_reason, ch.has_credentials, r.id AS root, r.data_key_id, i.id AS identity_id, i.kind AS identity_kind, "
    "i.address_enc, t.id AS thread_id, t.last_inbound_at, cs.consent "
    "FROM unnest(%(chs)b::uuid[], %(cts)b::uuid[]) WITH ORDINALITY AS q(channel_id, contact_id, ord) "
    # Each step is an index look-up by the previous one's key, whatever the planner guesses from a young
    # table's statistics: LIMIT / OFFSET 0 keep every LATERAL a per-row subquery (pulled up into joins,
    # they became scans of every contact and thread of the account, repeated for each message).
    "LEFT JOIN LATERAL (SELECT id, kind, external_id, group_id, status, paused_reason, "
    "(credentials_enc IS NOT NULL) AS has_credentials FROM channels "
    "WHERE account_id = %(a)s AND id = q.channel_id LIMIT 1) ch ON true "
    "LEFT JOIN LATERAL (SELECT r.id, r.data_key_id FROM contacts r WHERE r.account_id = %(a)s AND r.id = "
    "(SELECT coalesce(c.merged_into, c.id) FROM contacts c WHERE c.account_id = %(a)s AND c.id = q.contact_id) "
    "LIMIT 1) r ON true "
    "LEFT JOIN LATERAL (SELECT i.id, i.kind, i.address_enc, i.created_at FROM contact_identities i "
    "WHERE i.account_id = %(a)s AND i.contact_id = r.id UNION ALL "
    "SELECT i.id, i.kind, i.address_enc, i.created_at FROM contacts m JOIN contact_identities i "
    "ON i.account_id = m.account_id AND i.contact_id = m.id WHERE m.account_id = %(a)s AND m.merged_into = r.id "
    "OFFSET 0) i ON true "
    "LEFT JOIN LATERAL (SELECT t.id, t.last_inbound_at FROM threads t WHERE t.account_id = %(a)s "
    "AND t.contact_id = r.id AND t.channel_id = ch.id LIMIT 1) t ON true "
    # The consent state as the gate reads it, through merges (gateway/consent.py owns that SQL).
    "LEFT JOIN LATERAL (" + consent.state_sql("r.id", "ch.kind") + ") cs ON true "
    "ORDER BY q.ord, i.created_at")


@dataclass
class SendContext:
    channel: dict             # what the gate needs: id, kind, external_id, status, paused_reason, has_credentials
    contact_id: object        # the surviving contact (merges followed)
    key: object               # its data key
    identities: list[dict]    # kind, identity_id, address_enc, oldest first
    thread: dict | None       # id, last_inbound_at
    consent: dict[str, str]   # purpose → granted | withdrawn | lapsed (consent.state_sql)

    @property
    def gate_state(self) -> tuple[dict, dict | None]:
        return self.consent, self.thread


def send_contexts(conn, account_id, pairs: list[tuple]) -> list[SendContext | NotFound]:
    """For each (channel id, contact id): everything accepting a message needs - the channel; the contact
    through a merge, its data key, and every identity of it and of the contacts merged into it; its thread
    on the channel; its latest consent action per purpose - in one round trip for all of them."""
    if not pairs:
        return []
    grouped: dict[int, list[dict]] = {}
    as_uuid = lambda v: v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))  # noqa: E731 (binary arrays: one type)
    for row in conn.execute(_CONTEXT, {"a": account_id, "chs": [as_uuid(p[0]) for p in pairs],
                                       "cts": [as_uuid(p[1]) for p in pairs]}).fetchall():
        grouped.setdefault(row["ord"], []).append(row)
    out: list[SendContext | NotFound] = []
    keys = keystore.load_keys(conn, account_id=account_id, key_ids=[
        rows[0]["data_key_id"] for rows in grouped.values() if rows[0]["data_key_id"] is not None])
    for n, (channel_id, contact_id) in enumerate(pairs, start=1):
        rows = grouped[n]
        first = rows[0]
        if first["channel_id"] is None:
            out.append(NotFound(f"no channel with id {channel_id} in this account"))
            continue
        if first["root"] is None:
            out.append(NotFound(f"no contact with id {contact_id} in this account"))
            continue
        out.append(SendContext(
            channel={"id": first["channel_id"], "kind": first["channel_kind"], "external_id": first["external_id"],
                     "group_id": first["group_id"], "status": first["status"], "paused_reason": first["paused_reason"],
                     "has_credentials": first["has_credentials"]},
            contact_id=first["root"],
            key=keys.get(first["data_key_id"]) or keystore.load_key(conn, account_id=account_id,
                                                                    key_id=first["data_key_id"]),
            identities=[{"kind": r["identity_kind"], "identity_id": r["identity_id"],
                         "address_enc": r["address_enc"]} for r in rows if r["identity_id"] is not None],
            thread=None if first["thread_id"] is None else {"id": first["thread_id"],
                                                            "last_inbound_at": first["last_inbound_at"]},
            consent=first["consent"]))
    return out


def address_for(account_id, ctx: SendContext) -> tuple[str, str]:
    """The contact's address of the first identity kind the channel reaches (oldest identity first)."""
    kinds = _identity_kinds(ctx.channel["kind"])
    for kind in kinds:
        for ident in ctx.identities:
            if ident["kind"] == kind:
                return kind, ctx.key.decrypt_text(ident["address_enc"], field_aad(
                    "contact_identities", "address", account_id, ident["identity_id"]))
    raise send_gate.Refused("no_address_for_channel", 422, f"the contact has no {' or '.join(kinds)} identity, "
                            f"which a {ctx.channel['kind']} channel needs; add one or pick another channel")



def request_hash(body: dict) -> bytes:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).digest()


def accept(conn, account_id, *, channel_id, kind: str, content: dict, contact_id=None, to: dict | None = None,
           reply_to_id=None, purpose: str = "transactional", tag: str | None = None,
           idempotency_key: str | None = None, body_for_hash: dict | None = None):
    """Queue one message. Returns (the new message's row, True), or (an existing message's id, False) for a
    repeated Idempotency-Key. Raises NotFound, send_gate.Refused, IdempotencyConflict."""
    draft = Draft(channel_id=channel_id, kind=kind, content=content, contact_id=contact_id, to=to,
                  reply_to_id=reply_to_id, purpose=purpose, tag=tag, idempotency_key=idempotency_key,
                  request_hash=request_hash(body_for_hash or {}) if idempotency_key else None)
    outcome = accept_many(conn, account_id, [draft])[0]
    if isinstance(outcome, Exception):
        raise outcome
    if not outcome.created:
        return outcome.message["id"], False
    return dict(outcome.message, contact_id=outcome.contact_id, channel_id=outcome.channel_id,
                content=outcome.content, purpose=purpose), True


def accept_many(conn, account_id, drafts: list[Draft]) -> list[Accepted | Exception]:
    """Pass each draft through the one send gate and record those that pass, in the caller's transaction.

    Each outcome is an ``Accepted`` or the exception that refused that draft (NotFound, send_gate.Refused,
    IdempotencyConflict, InvalidRecipient); one draft's refusal does not stop the others. The caller
    commits, then calls ``enqueue`` for each created message."""
    outcomes: list[Accepted | Exception | None] = [None] * len(drafts)
    earlier = _earlier_by_key(conn, account_id, [d.idempotency_key for d in drafts if d.idempotency_key])
    for i, d in enumerate(drafts):
        if d.idempotency_key and d.idempotency_key in earlier:
            found_id, found_hash = earlier[d.idempotency_key]
            outcomes[i] = (IdempotencyConflict(_REUSED) if found_hash is not None and found_hash != d.request_hash
                           else Accepted({"id": found_id}, created=False))

    # Addresses given directly: find (or create) their contacts first.
    contact_ids = [d.contact_id for d in drafts]
    given: dict[int, tuple[str, str]] = {}
    for i, d in enumerate(drafts):
        if outcomes[i] is None and d.contact_id is None:
            try:
                contact_ids[i], given[i] = _contact_for_address(conn, account_id, d)
            except (NotFound, send_gate.Refused, InvalidRecipient) as exc:
                outcomes[i] = exc
    todo = [i for i in range(len(drafts)) if outcomes[i] is None]
    contexts = send_contexts(conn, account_id, [(drafts[i].channel_id, contact_ids[i]) for i in todo])

    now = datetime.now(timezone.utc)
    rows, owners = [], []
    memo: dict = {}   # catalog rows read once per batch (a campaign sends one template to every recipient)
    for i, ctx in zip(todo, contexts):
        d = drafts[i]
        try:
            if isinstance(ctx, Exception):
                raise ctx
            rows.append(_prepare(conn, account_id, d, ctx, now, given.get(i), memo))
            owners.append(i)
        except (NotFound, send_gate.Refused) as exc:
            outcomes[i] = exc
    opening = [r for r in rows if r["thread_id"] is None]
    if opening:
        opened = messages.threads_for_many(conn, account_id=account_id,
                                           pairs=[(r["contact_id"], r["channel_id"]) for r in opening])
        for r in opening:
            r["thread_id"] = opened[(r["contact_id"], r["channel_id"])]
    inserted = messages.record_outbound_many(conn, account_id=account_id, rows=rows, occurred_at=now)
    for i, row, made in zip(owners, rows, inserted):
        if made is None:
            # The same Idempotency-Key raced in from another request meanwhile: answer with the first one.
            again = _earlier_by_key(conn, account_id, [row["idempotency_key"]]).get(row["idempotency_key"])
            outcomes[i] = (IdempotencyConflict(_REUSED) if again and again[1] not in (None, row["request_hash"])
                           else Accepted({"id": again[0] if again else None}, created=False))
            continue
        outcomes[i] = Accepted(dict(made, body=row["body"]), contact_id=row["contact_id"],
                               channel_id=row["channel_id"], content=row["stored"])
    return outcomes


def check_many(conn, account_id, drafts: list[Draft]) -> list[Exception | None]:
    """What ``accept_many`` would answer for drafts with contact ids, recording nothing (a campaign's dry
    run): None where the gate passes, else the exception that refuses. Runs in a savepoint rolled back,
    so a thread the gate would open for a first message is not left behind."""
    import psycopg
    out: list[Exception | None] = [None] * len(drafts)
    memo: dict = {}
    with conn.transaction() as tx:
        contexts = send_contexts(conn, account_id, [(d.channel_id, d.contact_id) for d in drafts])
        now = datetime.now(timezone.utc)
        for i, (d, ctx) in enumerate(zip(drafts, contexts)):
            try:
                if isinstance(ctx, Exception):
                    raise ctx
                _prepare(conn, account_id, d, ctx, now, None, memo)
            except (NotFound, send_gate.Refused, InvalidRecipient) as exc:
                out[i] = exc
        raise psycopg.Rollback(tx)
    return out


_REUSED = ("this Idempotency-Key was used with a different request body; use a new key for a new message")


def _earlier_by_key(conn, account_id, keys: list[str]) -> dict[str, tuple]:
    if not keys:
        return {}
    return {r["idempotency_key"]: (r["id"], None if r["request_hash"] is None else bytes(r["request_hash"]))
            for r in conn.execute("SELECT idempotency_key, id, request_hash FROM messages WHERE account_id = %s "
                                  "AND idempotency_key = ANY(%s)", (account_id, keys)).fetchall()}


def _contact_for_address(conn, account_id, d: Draft):
    channel = channel_for_send(conn, account_id, d.channel_id)
    kinds = _identity_kinds(channel["kind"])
    kind = d.to.get("kind") or kinds[0]
    if kind not in kinds:
        raise send_gate.Refused("no_address_for_channel", 422, f"a {channel['kind']} channel reaches "
                                f"{' or '.join(kinds)} addresses, not {kind}")
    try:
        address = contacts.normalise_address(kind, d.to["address"])
    except contacts.InvalidAddress as exc:
        raise InvalidRecipient(f"the {kind} address is not valid: {exc}") from None
    contact_id = merges.resolve_sender(conn, account_id=account_id, identities=[(kind, address)], name=None,
                                       actor="outbound", source="api", channel_kind=channel["kind"])
    return contact_id, (kind, address)


def _prepare(conn, account_id, d: Draft, ctx: SendContext, now: datetime, given: tuple | None,
             memo: dict | None = None) -> dict:
    """Gate one draft and build its row (content encrypted later, with the id the insert will use)."""
    content, kind = dict(d.content), d.kind
    if kind == "template" and not send_gate.sends_templates(ctx.channel):
        from gateway import template_sends
        kind, content = template_sends.as_plain(conn, account_id, ctx.channel, ctx.contact_id, content)
    if kind == "reaction":
        target = provider_id_of(conn, account_id, content["message_id"])
        if target is None:
            raise NotFound("no message with a provider id to react to; react to a message that was delivered "
                           "through the provider", slug="unknown-message")
        content = {"message_id": target, "emoji": content["emoji"]}
    if upload_id(kind, content) is not None:
        try:
            uploads.check_reference(conn, account_id=account_id, media_id=content["media_id"])
        except LookupError as exc:
            raise NotFound(str(exc), slug="unknown-upload") from None
    to_kind, address = given or address_for(account_id, ctx)
    thread = send_gate.check(conn, account_id, send_gate.Request(
        channel=ctx.channel, contact_id=ctx.contact_id, kind=kind, content=content, purpose=d.purpose,
        tag=d.tag), now=now, state=ctx.gate_state, memo=memo)
    reply_provider_id = None
    if d.reply_to_id is not None:
        reply_provider_id = provider_id_of(conn, account_id, d.reply_to_id)
        if reply_provider_id is None:
            raise NotFound(f"no message {d.reply_to_id} with a provider id to reply to in this account")
    stored = {"to": {"kind": to_kind, "address": address}, **content}
    if d.tag:
        stored["tag"] = d.tag
    if reply_provider_id:
        stored["reply_to_provider_id"] = reply_provider_id
    text = content.get("body") if kind in ("text", "interactive") else content.get("caption")
    if kind == "template":
        text = stored.pop("rendered_text", None)   # what the customer sees, when the catalog rendered it
    # The first message to this contact on this channel: accept_many opens the threads of a whole batch at once.
    return {"contact_id": ctx.contact_id, "channel_id": ctx.channel["id"], "thread_id": thread and thread["id"],
            "kind": kind, "body": text or _rendition(kind, content), "stored": stored, "key": ctx.key,
            "reply_to_id": d.reply_to_id if reply_provider_id else None,
            "reply_to_bidx": messages.provider_id_bidx(account_id, reply_provider_id) if reply_provider_id else None,
            "idempotency_key": d.idempotency_key, "request_hash": d.request_hash, "purpose": d.purpose}


def upload_id(kind: str, content: dict):
    """The id of one of our uploads a media message names (a media_id that is not a UUID is the
    provider's own, uploaded there directly, and passes through untouched)."""
    if kind not in uploads.KINDS or not content.get("media_id"):
        return None
    try:
        return uuid.UUID(str(content["media_id"]))
    except ValueError:
        return None


def enqueue(account_id, message_id) -> None:
    """After commit: hand the id to the send workers (batched in the background)."""
    _enqueuer.add(account_id, message_id)


def flush_enqueues(timeout: float = 10.0) -> bool:
    return _enqueuer.flush(timeout)


def provider_id_of(conn, account_id, message_id) -> str | None:
    row = conn.execute(
        "SELECT m.id, m.provider_id_enc, c.data_key_id FROM messages m JOIN contacts c "
        "ON c.account_id = m.account_id AND c.id = m.contact_id WHERE m.account_id = %s AND m.id = %s",
        (account_id, message_id)).fetchone()
    if row is None or row["provider_id_enc"] is None:
        return None
    from gateway import keystore
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    return key.decrypt_text(row["provider_id_enc"], field_aad("messages", "provider_id", account_id, row["id"]))


def _rendition(kind: str, content: dict) -> str:
    if kind == "template":
        return f"[template {content.get('name')}]"
    if kind == "interactive":
        return content.get("body") or "[interactive]"
    if kind == "location":
        return content.get("name") or f"{content.get('latitude')},{content.get('longitude')}"
    if kind == "reaction":
        return content.get("emoji") or "[reaction removed]"
    if kind == "read":
        return "[read]"
    return f"[{kind}]"

"""CSAT / NPS / CES surveys: sent when a thread is resolved, answered by a tap or by digits in text.

Sending goes through the one send gate with purpose ``surveys``: a contact who withdrew that purpose, or a
WhatsApp/Messenger thread whose 24-hour window has closed, is refused there, and the refusal is recorded on
the survey request as a skip with the gate's rule. Answers arrive as ordinary inbound messages; the
automation engine offers each one to ``on_inbound`` (or ``handle_recorded``) before its own rules, and
stays silent when it returns True.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from psycopg.types.json import Jsonb

from gateway import contacts, events, keystore, outbound, send_gate
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
PAYLOAD_PREFIX = "survey:"
# Meta caps a WhatsApp list at 10 rows in all: NPS has 11 answers, so on WhatsApp it goes as text.
WHATSAPP_LIST_ROWS = 10
MESSENGER_QUICK_REPLIES = 13
MAX_QUESTION = 1024              # a WhatsApp interactive body
MAX_EXPIRY_HOURS = 720
# A score typed as text must be the message's only number and the message short: "I'd say 4", "10/10",
# "8 out of 10". Longer messages with a number in them ("I have 2 problems") are conversation.
MAX_TEXT_ANSWER = 40
_SCORE_TEXT = re.compile(r"^\D{0,30}?(\d{1,2})(?:\s*(?:/|out of|of|de|sur|von|em)\s*\d{1,2})?\D{0,30}$",
                         re.IGNORECASE)

_HINTS = {"en": "Reply with a number from {lo} to {hi}.", "es": "Responde con un número del {lo} al {hi}.",
          "pt": "Responda com um número de {lo} a {hi}.", "fr": "Répondez par un nombre de {lo} à {hi}.",
          "de": "Antworten Sie mit einer Zahl von {lo} bis {hi}.", "it": "Rispondi con un numero da {lo} a {hi}."}
_LIST_BUTTON = {"en": "Choose a score", "es": "Elige una nota", "pt": "Escolha uma nota", "fr": "Choisir une note",
                "de": "Note wählen", "it": "Scegli un voto"}


# --- configuration ---------------------------------------------------------------------------------------

_SETTINGS_COLUMNS = "enabled, kind, questions, follow_up, expiry_hours, updated_at"


def get_settings(conn, *, account_id) -> dict | None:
    return conn.execute(f"SELECT {_SETTINGS_COLUMNS} FROM survey_settings WHERE account_id = %s",
                        (account_id,)).fetchone()


def _texts(doc, name: str, required: bool, err) -> None:
    value = doc.get(name)
    if value is None:
        if required:
            err(f"/{name}", "required: the question per language, e.g. {\"en\": \"How did we do?\"}")
        return
    if not isinstance(value, dict) or not value:
        err(f"/{name}", "an object of language → text with at least one language, e.g. {\"en\": \"…\"}")
        return
    for lang, text in value.items():
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", str(lang)):
            err(f"/{name}/{lang}", "the key must be a language code such as en, es or pt-BR")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_QUESTION:
            err(f"/{name}/{lang}", f"a non-empty text of at most {MAX_QUESTION} characters")


def validate_settings(doc) -> list[dict]:
    """Every problem in a PUT /v1/surveys/config body at once, each with its JSON pointer."""
    errors: list[dict] = []

    def err(pointer, detail):
        errors.append({"pointer": pointer, "detail": detail})

    if not isinstance(doc, dict):
        return [{"pointer": "", "detail": "a JSON object: {kind, questions, follow_up?, expiry_hours?, enabled?}"}]
    allowed = ("enabled", "kind", "questions", "follow_up", "expiry_hours")
    for name in doc:
        if name not in allowed:
            err(f"/{name}", f"unknown field; the fields are {', '.join(allowed)}")
    if doc.get("kind") not in SCALES:
        err("/kind", "required: csat (1 to 5), nps (0 to 10) or ces (1 to 7)")
    _texts(doc, "questions", True, err)
    _texts(doc, "follow_up", False, err)
    hours = doc.get("expiry_hours", 72)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_EXPIRY_HOURS:
        err("/expiry_hours", f"a whole number of hours from 1 to {MAX_EXPIRY_HOURS}")
    if not isinstance(doc.get("enabled", True), bool):
        err("/enabled", "true or false")
    return errors


def save_settings(conn, *, account_id, doc: dict, actor: str) -> dict:
    row = conn.execute(
        "INSERT INTO survey_settings (account_id, enabled, kind, questions, follow_up, expiry_hours) "
        "VALUES (%(a)s, %(e)s, %(k)s, %(q)s, %(f)s, %(h)s) ON CONFLICT (account_id) DO UPDATE SET "
        "enabled = EXCLUDED.enabled, kind = EXCLUDED.kind, questions = EXCLUDED.questions, "
        f"follow_up = EXCLUDED.follow_up, expiry_hours = EXCLUDED.expiry_hours, updated_at = now() "
        f"RETURNING {_SETTINGS_COLUMNS}",
        {"a": account_id, "e": doc.get("enabled", True), "k": doc["kind"], "q": Jsonb(doc["questions"]),
         "f": Jsonb(doc["follow_up"]) if doc.get("follow_up") else None,
         "h": doc.get("expiry_hours", 72)}).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="surveys.configured", target_type="account",
          target_id=account_id, detail={"kind": row["kind"], "enabled": row["enabled"],
                                        "languages": sorted(row["questions"])})
    return row


# --- sending -----------------------------------------------------------------------------------------------

def _pick(texts: dict | None, preferred: list) -> tuple[str | None, str | None]:
    """(language, text) for the first preferred language the account wrote the text in (exact, then by
    its base language), else English, else whichever comes first."""
    if not texts:
        return None, None
    for lang in [p for p in preferred if p] + ["en"]:
        if lang in texts:
            return lang, texts[lang]
        base = lang.split("-")[0]
        for have in texts:
            if have.split("-")[0] == base:
                return have, texts[have]
    first = next(iter(texts))
    return first, texts[first]


def payload(kind: str, score: int) -> str:
    return f"{PAYLOAD_PREFIX}{kind}:{score}"


def render(channel_kind: str, kind: str, question: str, language: str | None) -> tuple[str, dict]:
    """(message kind, content) of the survey on this channel, as ``outbound.accept`` takes them."""
    lo, hi = SCALES[kind]
    base = (language or "en").split("-")[0]
    options = list(range(lo, hi + 1))
    if channel_kind == "whatsapp" and len(options) <= WHATSAPP_LIST_ROWS:
        # A list even for CSAT: reply buttons stop at 3.
        rows = [{"id": payload(kind, n), "title": f"{n} {'★' * n}" if kind == "csat" else str(n)}
                for n in reversed(options)]
        return "interactive", {"type": "list", "body": question, "button": _LIST_BUTTON.get(base, _LIST_BUTTON["en"]),
                               "sections": [{"rows": rows}]}
    if channel_kind in ("messenger", "instagram") and len(options) <= MESSENGER_QUICK_REPLIES:
        # Messenger turns interactive buttons into quick replies, up to 13.
        return "interactive", {"type": "button", "body": question,
                               "buttons": [{"id": payload(kind, n), "title": str(n)} for n in options]}
    hint = _HINTS.get(base, _HINTS["en"]).format(lo=lo, hi=hi)
    return "text", {"body": f"{question}\n\n{hint}"}


def _preferred_languages(conn, account_id, contact_id) -> list:
    return list(contacts.languages(conn, account_id=account_id, contact_id=contact_id))


def on_resolved(conn, *, account_id, thread: dict) -> dict | None:
    """Start the survey of one resolution (``thread``: id, contact_id, channel_id, resolution_seq) in the
    caller's transaction. Returns the survey request (state ``sent`` with its ``message_id`` to enqueue after
    commit, or ``skipped`` with the gate's rule), or None when the account has no enabled survey."""
    cfg = get_settings(conn, account_id=account_id)
    if cfg is None or not cfg["enabled"]:
        return None
    channel = conn.execute("SELECT kind FROM channels WHERE account_id = %s AND id = %s",
                           (account_id, thread["channel_id"])).fetchone()
    language, question = _pick(cfg["questions"], _preferred_languages(conn, account_id, thread["contact_id"]))
    _, follow_up = _pick(cfg["follow_up"], [language])
    request_id = uuid7()
    # The request row first: the unique resolution key decides, before anything is sent.
    made = conn.execute(
        "INSERT INTO survey_requests (account_id, id, thread_id, resolution_seq, contact_id, channel_id, kind, "
        "language, state, follow_up_question, assignee) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'skipped', %s, "
        # Who held the thread when it was resolved: the agent's external id (the CRM's), for CSAT by agent.
        "(SELECT a.external_id FROM threads t JOIN agents a ON a.account_id = t.account_id AND a.id = t.assignee_id "
        "WHERE t.account_id = %s AND t.id = %s)) "
        "ON CONFLICT (account_id, thread_id, resolution_seq) DO NOTHING RETURNING id",
        (account_id, request_id, thread["id"], thread["resolution_seq"], thread["contact_id"], thread["channel_id"],
         cfg["kind"], language, follow_up, account_id, thread["id"])).fetchone()
    if made is None:
        return None
    msg_kind, content = render(channel["kind"], cfg["kind"], question, language)
    try:
        with conn.transaction():
            accepted, _ = outbound.accept(conn, account_id, channel_id=thread["channel_id"], kind=msg_kind,
                                          content=content, contact_id=thread["contact_id"], purpose="surveys",
                                          idempotency_key=f"survey:{request_id}")
    except send_gate.Refused as exc:
        return _skip(conn, account_id, request_id, exc.rule)
    except outbound.NotFound as exc:
        return _skip(conn, account_id, request_id, exc.slug.replace("-", "_"))
    return conn.execute(
        "UPDATE survey_requests SET state = 'sent', message_id = %s, sent_at = now(), "
        "expires_at = now() + make_interval(hours => %s) WHERE account_id = %s AND id = %s "
        "RETURNING id, state, skip_reason, message_id, sent_at, expires_at, kind, language",
        (accepted["id"], cfg["expiry_hours"], account_id, request_id)).fetchone()


def _skip(conn, account_id, request_id, reason: str) -> dict:
    return conn.execute(
        "UPDATE survey_requests SET skip_reason = %s WHERE account_id = %s AND id = %s "
        "RETURNING id, state, skip_reason, message_id, sent_at, expires_at, kind, language",
        (reason, account_id, request_id)).fetchone()


# --- answers -----------------------------------------------------------------------------------------------

def reply_payload(kind: str, content: dict) -> str | None:
    """The id/payload of a tapped reply: WhatsApp list or button replies, template quick-reply buttons,
    Messenger/Instagram quick replies, Twilio's ButtonPayload."""
    content = content or {}
    inter = content.get("interactive")
    if isinstance(inter, dict):
        for sub in ("list_reply", "button_reply"):
            tapped = inter.get(sub)
            if isinstance(tapped, dict) and tapped.get("id"):
                return str(tapped["id"])
    for name in ("quick_reply", "button"):
        tapped = content.get(name)
        if isinstance(tapped, dict) and tapped.get("payload"):
            return str(tapped["payload"])
    if content.get("ButtonPayload"):
        return str(content["ButtonPayload"])
    return None


def score_from_payload(value: str | None) -> int | None:
    if not value or not value.startswith(PAYLOAD_PREFIX):
        return None
    last = value.rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else None


def score_from_text(text: str | None) -> int | None:
    if not text or len(text.strip()) > MAX_TEXT_ANSWER:
        return None
    found = _SCORE_TEXT.match(text.strip())
    return int(found.group(1)) if found else None


def parse_score(survey_kind: str, message_kind: str, text: str | None, content: dict) -> int | None:
    """The score a message gives on this survey's scale, or None (no score, or out of range)."""
    tapped = reply_payload(message_kind, content)
    # A tap decides by its payload alone: "3" on another menu's button is that menu's answer, not a score.
    score = score_from_payload(tapped) if tapped is not None else score_from_text(text)
    lo, hi = SCALES[survey_kind]
    return score if score is not None and lo <= score <= hi else None


_OPEN_REQUEST = (
    "SELECT r.id, r.thread_id, r.resolution_seq, r.contact_id, r.channel_id, r.kind, r.language, r.state, "
    "r.expires_at, r.follow_up_question, r.follow_up_state FROM survey_requests r "
    "WHERE r.account_id = %s AND r.thread_id = %s AND r.state IN ('sent', 'answered') "
    "ORDER BY r.created_at DESC, r.id DESC LIMIT 1 FOR UPDATE")


def on_inbound(conn, *, account_id, channel: dict, contact_id, thread_id, message: dict, kind: str,
               text: str | None, content: dict, send_ids: list | None = None) -> bool:
    """Offer one newly recorded inbound message to the thread's latest survey; True when it answered it
    (the caller then sends no automated reply of its own).

    A score is stored once; a later tap on the same survey is swallowed without counting; answers after the
    expiry are ignored (not consumed). When a follow-up question is configured it is sent after the score,
    and the next text message is stored as the comment, encrypted under the contact's key. The follow-up's
    message id is appended to ``send_ids`` for the caller to enqueue after commit (without a list, the
    sweeper picks the queued message up)."""
    if message.get("direction", "inbound") != "inbound":
        return False
    req = conn.execute(_OPEN_REQUEST, (account_id, thread_id)).fetchone()
    if req is None:
        return False
    at = message.get("occurred_at") or datetime.now(timezone.utc)
    expired = req["expires_at"] is not None and at > req["expires_at"]
    tapped = reply_payload(kind, content)
    ours = tapped is not None and tapped.startswith(PAYLOAD_PREFIX)

    if req["state"] == "answered":
        if (req["follow_up_state"] == "awaiting" and not ours and not expired and kind == "text"
                and text and text.strip()):
            _store_comment(conn, account_id, req, message, text.strip(), at)
            _keep_resolved(conn, account_id, req, message)
            return True
        if ours and not expired:
            _keep_resolved(conn, account_id, req, message)
            return True
        return False
    if expired:
        return False
    score = parse_score(req["kind"], kind, text, content)
    if score is None:
        return False
    response_id = uuid7()
    stored = conn.execute(
        "INSERT INTO survey_responses (account_id, id, request_id, thread_id, contact_id, channel_id, assignee, "
        "kind, score, message_id, answered_at) SELECT %(a)s, %(id)s, %(r)s, t.id, %(c)s, %(ch)s, "
        # The agent who held the thread at its resolution (the request's), by their external id.
        "(SELECT q.assignee FROM survey_requests q WHERE q.account_id = %(a)s AND q.id = %(r)s), "
        "%(k)s, %(s)s, %(m)s, %(at)s FROM threads t "
        "WHERE t.account_id = %(a)s AND t.id = %(t)s ON CONFLICT (account_id, request_id) DO NOTHING RETURNING id",
        {"a": account_id, "id": response_id, "r": req["id"], "c": req["contact_id"], "ch": req["channel_id"],
         "k": req["kind"], "s": score, "m": message.get("id"), "at": at, "t": thread_id}).fetchone()
    if stored is None:
        return True
    events.emit(conn, account_id, "survey.answered", {
        "survey_id": str(req["id"]), "thread_id": str(thread_id), "contact_id": str(req["contact_id"]),
        "kind": req["kind"], "score": score}, subject_id=thread_id)
    follow_state = "none"
    follow_id = None
    if req["follow_up_question"]:
        try:
            with conn.transaction():
                accepted, _ = outbound.accept(conn, account_id, channel_id=req["channel_id"], kind="text",
                                              content={"body": req["follow_up_question"]},
                                              contact_id=req["contact_id"], purpose="surveys",
                                              idempotency_key=f"survey-follow-up:{req['id']}")
            follow_state, follow_id = "awaiting", accepted["id"]
            if send_ids is not None:
                send_ids.append(follow_id)
        except (send_gate.Refused, outbound.NotFound):
            follow_state = "skipped"
    conn.execute("UPDATE survey_requests SET state = 'answered', answered_at = %s, follow_up_state = %s, "
                 "follow_up_message_id = %s WHERE account_id = %s AND id = %s",
                 (at, follow_state, follow_id, account_id, req["id"]))
    _keep_resolved(conn, account_id, req, message)
    return True


def _store_comment(conn, account_id, req: dict, message: dict, comment: str, at) -> None:
    row = conn.execute("SELECT id FROM survey_responses WHERE account_id = %s AND request_id = %s",
                       (account_id, req["id"])).fetchone()
    key = contacts.contact_key(conn, account_id=account_id, contact_id=req["contact_id"])
    conn.execute("UPDATE survey_responses SET comment_enc = %s, commented_at = %s WHERE account_id = %s AND id = %s",
                 (key.encrypt(comment, field_aad("survey_responses", "comment", account_id, row["id"])), at,
                  account_id, row["id"]))
    conn.execute("UPDATE survey_requests SET follow_up_state = 'answered' WHERE account_id = %s AND id = %s",
                 (account_id, req["id"]))


def _keep_resolved(conn, account_id, req: dict, message: dict) -> None:
    """A survey answer is not a new conversation: undo the reopening that recording it caused (the message
    insert stamps reopened_at with its own created_at), but not a reopening by a person or a later message."""
    created = message.get("created_at")
    if created is None:
        return
    conn.execute("UPDATE threads SET status = 'resolved' WHERE account_id = %s AND id = %s AND status = 'open' "
                 "AND reopened_at = %s AND resolution_seq = %s",
                 (account_id, req["thread_id"], created, req["resolution_seq"]))


def handle_recorded(conn, account_id, message_id, send_ids: list | None = None) -> bool:
    """``on_inbound`` for a message already recorded, by its id (what the automation engine holds)."""
    row = conn.execute(
        "SELECT m.id, m.thread_id, m.contact_id, m.channel_id, m.direction, m.kind, m.body_enc, m.content_enc, "
        "m.occurred_at, m.created_at, c.data_key_id, ch.kind AS channel_kind, ch.external_id "
        "FROM messages m JOIN contacts c ON c.account_id = m.account_id AND c.id = m.contact_id "
        "JOIN channels ch ON ch.account_id = m.account_id AND ch.id = m.channel_id "
        "WHERE m.account_id = %s AND m.id = %s", (account_id, message_id)).fetchone()
    if row is None or row["direction"] != "inbound":
        return False
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    text = key.decrypt_text(row["body_enc"], field_aad("messages", "body", account_id, row["id"]))
    raw = key.decrypt_text(row["content_enc"], field_aad("messages", "content", account_id, row["id"]))
    message = {"id": row["id"], "thread_id": row["thread_id"], "direction": "inbound", "kind": row["kind"],
               "occurred_at": row["occurred_at"], "created_at": row["created_at"]}
    return on_inbound(conn, account_id=account_id,
                      channel={"id": row["channel_id"], "kind": row["channel_kind"], "external_id": row["external_id"]},
                      contact_id=row["contact_id"], thread_id=row["thread_id"], message=message, kind=row["kind"],
                      text=text, content=json.loads(raw) if raw else {}, send_ids=send_ids)


# --- reading -----------------------------------------------------------------------------------------------

def list_responses(conn, *, account_id, thread_id=None, channel_id=None, kind: str | None = None, since=None,
                   limit: int = 50, before=None) -> list[dict]:
    """Newest answer first; ``before`` is the (answered_at, id) of the previous page's last response."""
    where, params = ["r.account_id = %s"], [account_id]
    for column, value in (("r.thread_id", thread_id), ("r.channel_id", channel_id), ("r.kind", kind)):
        if value is not None:
            where.append(f"{column} = %s"), params.append(value)
    if since is not None:
        where.append("r.answered_at >= %s"), params.append(since)
    if before is not None:
        where.append("(r.answered_at, r.id) < (%s, %s)"), params.extend(before)
    rows = conn.execute(
        "SELECT r.id, r.request_id, r.thread_id, r.contact_id, r.channel_id, r.assignee, r.kind, r.score, "
        "r.comment_enc, r.message_id, r.answered_at, r.commented_at, c.data_key_id FROM survey_responses r "
        "JOIN contacts c ON c.account_id = r.account_id AND c.id = r.contact_id "
        f"WHERE {' AND '.join(where)} ORDER BY r.answered_at DESC, r.id DESC LIMIT %s", (*params, limit)).fetchall()
    out = []
    for row in rows:
        comment = None
        if row["comment_enc"] is not None:
            key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
            comment = key.decrypt_text(row["comment_enc"], field_aad("survey_responses", "comment", account_id,
                                                                     row["id"]))
        scale = SCALES[row["kind"]]
        out.append({"id": row["id"], "request_id": row["request_id"], "thread_id": row["thread_id"],
                    "contact_id": row["contact_id"], "channel_id": row["channel_id"], "assignee": row["assignee"],
                    "kind": row["kind"], "score": row["score"], "scale": {"min": scale[0], "max": scale[1]},
                    "comment": comment, "message_id": row["message_id"], "answered_at": row["answered_at"],
                    "commented_at": row["commented_at"]})
    return out


def requests_of_thread(conn, *, account_id, thread_id) -> list[dict]:
    return conn.execute(
        "SELECT id, resolution_seq, kind, language, state, skip_reason, message_id, sent_at, expires_at, "
        "answered_at, follow_up_state, created_at FROM survey_requests WHERE account_id = %s AND thread_id = %s "
        "ORDER BY created_at, id", (account_id, thread_id)).fetchall()

"""The automation engine: what answers a customer's inbound message automatically, and why.

``normalise._message`` calls ``on_inbound`` for every newly recorded inbound message, after the consent
keywords (gateway/keywords.py), inside the inbound worker's transaction. Replies pass the one send gate
(``outbound.accept_many``) there; the ids returned are enqueued by ``inbound._process`` after the batch
commits (``Outcome.send_ids``), like the keyword replies.

Responders
----------
The engine is an ordered list of responders, ``RESPONDERS``. Each gets a ``Context`` and returns ``None``
to let the next one look at the message, or the list of message ids it queued (possibly empty) to end
the turn. In order: surveys (an answer to an open survey is consumed, even on a thread a person
handles), the account's rules by priority, then the level-1 assistant (only when the bot handles the
thread and the account has a knowledge base: an answer above the threshold, else a hand-off).

A responder with ``when_human=False`` (the default) is not called on a thread a person handles. Sending
through ``ctx.send(drafts)`` applies the per-thread hourly cap and marks messages as automated;
``ctx.decide(...)`` records the decision on the thread; ``ctx.hand_off(...)`` moves the thread to a person.

Guards before any responder: only customer messages (echoes, statuses and the gateway's own messages never
reach here: normalise calls this for inbound messages only), not reactions, edits or deletions, and not a
message the consent layer acted on (STOP, START, HELP). An opted-out contact is refused by the send gate:
the decision is recorded as ``refused``. A failure here never blocks ingestion: the engine runs in a
savepoint and its error is logged (without personal data) and dropped.

Automated messages: ``messages.automated = true`` on the row (a column, not the encrypted content, so the
hourly cap is an index range count); purpose ``transactional``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Callable

from psycopg.types.json import Jsonb

from gateway import assistant, contact_tags, contacts, events, outbound, send_gate, surveys, thread_events, threads
from gateway.assistant import kb as assistant_kb
from gateway.automation import flow_runner, flows, hours, rules, text_match
from gateway.db import uuid7

log = logging.getLogger("gateway.automation")

# A menu journey (welcome, three menus, a question, a confirmation) fits; a bot answering our bot stops soon.
DEFAULT_MAX_PER_THREAD_PER_HOUR = 10
# The assistant hands off at the first question it cannot answer unless the account allows more tries.
DEFAULT_HANDOFF_AFTER_UNANSWERED = 1
SETTINGS = {"max_per_thread_per_hour": (DEFAULT_MAX_PER_THREAD_PER_HOUR, 0, 1000),
            "handoff_after_unanswered": (DEFAULT_HANDOFF_AFTER_UNANSWERED, 1, 10)}
_REPHRASE = {"en": "Sorry, I am not sure I understood. Could you say it in other words? "
                   "Or write \"agent\" to talk to a person.",
             "es": "Perdona, no estoy seguro de haberte entendido. ¿Puedes decirlo de otra forma? "
                   "O escribe \"agente\" para hablar con una persona.",
             "pt": "Desculpe, não tenho certeza de que entendi. Pode dizer de outra forma? "
                   "Ou escreva \"atendente\" para falar com uma pessoa.",
             "fr": "Désolé, je ne suis pas sûr d'avoir compris. Pouvez-vous le dire autrement ? "
                   "Ou écrivez « conseiller » pour parler à une personne.",
             "de": "Entschuldigung, ich bin nicht sicher, ob ich das verstanden habe. Können Sie es anders sagen? "
                   "Oder schreiben Sie \"Mitarbeiter\", um mit einer Person zu sprechen.",
             "it": "Scusa, non sono sicuro di aver capito. Puoi dirlo in un altro modo? "
                   "Oppure scrivi \"operatore\" per parlare con una persona."}
# Not conversation: a customer reacting to, editing or deleting a message asks nothing.
IGNORED_KINDS = frozenset({"reaction", "edit", "revoke", "unsupported", "system", "read", "status"})
HANDED_OFF = "thread.handed_off"
HANDED_BACK = "thread.handed_back"
# Far-future sentinel for "closed with no opening within a year": still one notice per thread.
_NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)


def settings_of(stored: dict | None) -> dict:
    """The account's automation settings with the defaults filled in."""
    out = {}
    for name, (default, lo, hi) in SETTINGS.items():
        value = (stored or {}).get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
        out[name] = value if ok else default
    return out


@dataclass
class Context:
    conn: object
    account_id: object
    channel: dict
    contact_id: object
    thread_id: object
    message: dict
    kind: str
    text: str | None
    content: dict
    now: datetime

    @cached_property
    def state(self) -> dict:
        return self.conn.execute(
            "SELECT a.timezone, a.default_language, a.automation_settings, t.handler, c.language, "
            "t.flow_automation_id, t.flow_step, t.flow_misses, t.flow_at "
            "FROM accounts a JOIN threads t ON t.account_id = a.id AND t.id = %s "
            "LEFT JOIN contacts c ON c.account_id = a.id AND c.id = %s WHERE a.id = %s",
            (self.thread_id, self.contact_id, self.account_id)).fetchone()

    @property
    def handler(self) -> str:
        return self.state["handler"]

    @property
    def timezone(self) -> str:
        return self.state["timezone"] or "UTC"

    @property
    def languages(self) -> list[str | None]:
        return [self.state["language"], self.state["default_language"], "en"]

    def setting(self, name: str) -> int:
        return settings_of(self.state["automation_settings"])[name]

    @property
    def cap(self) -> int:
        return self.setting("max_per_thread_per_hour")

    def automated_last_hour(self) -> int:
        return self.conn.execute(
            "SELECT count(*) AS n FROM messages WHERE account_id = %s AND thread_id = %s AND automated "
            "AND created_at > %s", (self.account_id, self.thread_id, self.now - timedelta(hours=1))).fetchone()["n"]

    def send(self, drafts: list[outbound.Draft]) -> tuple[list, str | None]:
        """Queue automated messages through the send gate: (ids queued, why not all went: 'cap' or the gate's
        rule). Over the cap nothing goes: a half-sent answer is worse than none."""
        if not drafts:
            return [], None
        if self.automated_last_hour() + len(drafts) > self.cap:
            return [], "cap"
        sent, why = [], None
        for d, outcome in zip(drafts, outbound.accept_many(self.conn, self.account_id, drafts)):
            if isinstance(outcome, send_gate.Refused):
                why = why or outcome.rule
            elif isinstance(outcome, Exception):
                why = why or type(outcome).__name__
            elif outcome.created:
                sent.append(outcome.message["id"])
        if sent:
            self.conn.execute("UPDATE messages SET automated = true WHERE account_id = %s AND id = ANY(%s)",
                              (self.account_id, sent))
        return sent, why

    def decide(self, *, responder: str, outcome: str, rule: dict | None = None, reason: str | None = None,
               actions: list | None = None, sent: list | None = None, decision_id=None):
        """Record (or complete, by ``decision_id``) a decision on the thread."""
        values = (rule["id"] if rule else None, rule["kind"] if rule else None, responder, outcome, reason,
                  Jsonb(actions or []), Jsonb([str(i) for i in sent or []]))
        if decision_id is not None:
            self.conn.execute(
                "UPDATE thread_decisions SET automation_id = %s, rule_kind = %s, responder = %s, outcome = %s, "
                "reason = %s, actions = %s, sent_message_ids = %s WHERE account_id = %s AND id = %s",
                (*values, self.account_id, decision_id))
            return decision_id
        decision_id = uuid7()
        self.conn.execute(
            "INSERT INTO thread_decisions (account_id, id, thread_id, message_id, automation_id, rule_kind, "
            "responder, outcome, reason, actions, sent_message_ids) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s)", (self.account_id, decision_id, self.thread_id, self.message["id"], *values))
        return decision_id

    def hand_off(self, *, reason: str, rule: dict | None = None) -> bool:
        return hand_off(self.conn, account_id=self.account_id, thread_id=self.thread_id, reason=reason,
                        automation_id=rule["id"] if rule else None, now=self.now)


@dataclass
class Responder:
    name: str
    respond: Callable[[Context], list | None]
    when_human: bool = False     # called on a thread a person handles (surveys: yes; rules, assistant: no)


def consumer(fn: Callable[..., bool]) -> Callable[[Context], list | None]:
    """A responder from a function with on_inbound's keywords plus ``send_ids`` (a list it appends the ids it
    queued to) that returns True when it consumed the message."""
    def respond(ctx: Context) -> list | None:
        ids: list = []
        consumed = fn(ctx.conn, account_id=ctx.account_id, channel=ctx.channel, contact_id=ctx.contact_id,
                      thread_id=ctx.thread_id, message=ctx.message, kind=ctx.kind, text=ctx.text,
                      content=ctx.content, send_ids=ids)
        return ids if consumed else None
    return respond


# --- thread handler ----------------------------------------------------------------------------------

def hand_off(conn, *, account_id, thread_id, reason: str, automation_id=None, now=None) -> bool:
    """Give the thread to a person; emits thread.handed_off. False when a person already had it."""
    row = conn.execute(
        "UPDATE threads SET handler = 'human', handed_off_at = %s WHERE account_id = %s AND id = %s "
        "AND handler = 'bot' RETURNING channel_id", (now or datetime.now(timezone.utc), account_id, thread_id)
    ).fetchone()
    if row is None:
        return False
    events.emit(conn, account_id, HANDED_OFF, {"thread_id": str(thread_id), "channel_id": str(row["channel_id"]),
                                               "reason": reason, "automation_id": automation_id and str(automation_id)},
                subject_id=thread_id)
    thread_events.record(conn, account_id=account_id, thread_id=thread_id, kind="handler",
                         actor="api" if reason == "api" else "automation", detail={"to": "human", "reason": reason})
    return True


def hand_back(conn, *, account_id, thread_id) -> bool:
    row = conn.execute("UPDATE threads SET handler = 'bot', handed_off_at = NULL WHERE account_id = %s AND id = %s "
                       "AND handler = 'human' RETURNING channel_id", (account_id, thread_id)).fetchone()
    if row is None:
        return False
    events.emit(conn, account_id, HANDED_BACK, {"thread_id": str(thread_id), "channel_id": str(row["channel_id"])},
                subject_id=thread_id)
    thread_events.record(conn, account_id=account_id, thread_id=thread_id, kind="handler", actor="gateway",
                         detail={"to": "bot"})
    return True


def record_api_decision(conn, *, account_id, thread_id, outcome: str) -> None:
    conn.execute("INSERT INTO thread_decisions (account_id, id, thread_id, responder, outcome) "
                 "VALUES (%s, %s, %s, 'api', %s)", (account_id, uuid7(), thread_id, outcome))


def list_decisions(conn, *, account_id, thread_id, limit: int = 100) -> list[dict]:
    return conn.execute(
        "SELECT id, message_id, automation_id, rule_kind, responder, outcome, reason, actions, sent_message_ids, "
        "closed_until, created_at FROM thread_decisions WHERE account_id = %s AND thread_id = %s "
        "ORDER BY id DESC LIMIT %s", (account_id, thread_id, limit)).fetchall()


# --- the rules responder -------------------------------------------------------------------------------

def _first_inbound(ctx: Context, reopen_after_days: int | None) -> bool:
    row = ctx.conn.execute(
        "SELECT max(occurred_at) AS previous FROM messages WHERE account_id = %s AND thread_id = %s "
        "AND direction = 'inbound' AND id <> %s", (ctx.account_id, ctx.thread_id, ctx.message["id"])).fetchone()
    if row["previous"] is not None:
        return bool(reopen_after_days) and row["previous"] < ctx.now - timedelta(days=reopen_after_days)
    # A new thread of a known contact (another channel) is not a new contact.
    other = ctx.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM threads t JOIN messages m ON m.account_id = t.account_id AND m.thread_id = t.id "
        "AND m.direction = 'inbound' WHERE t.account_id = %s AND t.contact_id = %s AND t.id <> %s) AS x",
        (ctx.account_id, ctx.contact_id, ctx.thread_id)).fetchone()["x"]
    return not other


def _claim_notice(ctx: Context, rule: dict, closed_until: datetime):
    """One notice per thread and closed period: the decision row is the claim (a unique index), taken before
    anything is sent so two workers on one thread cannot both send."""
    row = ctx.conn.execute(
        "INSERT INTO thread_decisions (account_id, id, thread_id, message_id, automation_id, rule_kind, responder, "
        "outcome, closed_until) VALUES (%s, %s, %s, %s, %s, %s, 'rules', 'pending', %s) "
        "ON CONFLICT (account_id, thread_id, automation_id, closed_until) WHERE closed_until IS NOT NULL "
        "DO NOTHING RETURNING id",
        (ctx.account_id, uuid7(), ctx.thread_id, ctx.message["id"], rule["id"], rule["kind"], closed_until)).fetchone()
    return row["id"] if row else None


def _match(ctx: Context, rule: dict):
    """None, or (decision id already claimed or None, placeholders for reply texts)."""
    d, kind = rule["definition"], rule["kind"]
    if kind == "welcome":
        return (None, {}) if _first_inbound(ctx, d.get("reopen_after_days")) else None
    if kind == "keyword":
        if not text_match.language_fits(d.get("language"), ctx.state["language"] or ctx.state["default_language"]):
            return None
        return (None, {}) if text_match.keyword_matches(d, ctx.text) else None
    if kind == "handoff":
        return (None, {}) if text_match.handoff_matches(d, ctx.text) else None
    if kind == "flow":
        trigger = d.get("trigger")
        if not trigger or not text_match.language_fits(trigger.get("language"),
                                                  ctx.state["language"] or ctx.state["default_language"]):
            return None
        return (None, {}) if text_match.keyword_matches(trigger, ctx.text) else None
    if kind == "business_hours":
        schedule = d["schedule"]
        if hours.is_open(schedule, ctx.now, default_tz=ctx.timezone):
            return None
        back = hours.next_open(schedule, ctx.now, default_tz=ctx.timezone)
        claimed = _claim_notice(ctx, rule, back.astimezone(timezone.utc) if back else _NEVER)
        if claimed is None:
            return None   # this closed period's notice went already: later rules may still answer
        tz = hours.zone(schedule, ctx.timezone)
        return claimed, hours.placeholders(back, tz, ctx.languages[0] or ctx.languages[1])
    return None


_PLACEHOLDER = re.compile(r"\{(next_open|next_open_day|next_open_date|next_open_time|timezone)\}")


def _drafts(ctx: Context, rule: dict, placeholders: dict) -> list[outbound.Draft]:
    out = []
    for i, a in enumerate(rule["definition"].get("actions") or []):
        key = f"automation:{ctx.message['id']}:{rule['id']}:{i}"
        if a["type"] == "reply":
            text = text_match.reply_text(a["text"], ctx.languages)
            if not text:
                continue
            text = _PLACEHOLDER.sub(lambda m: placeholders.get(m.group(1), m.group(0)), text)
            out.append(outbound.Draft(channel_id=ctx.channel["id"], kind="text", content={"body": text},
                                      contact_id=ctx.contact_id, idempotency_key=key))
        elif a["type"] == "template":
            content = {"name": a["name"]}
            for name in ("language", "parameters"):
                if a.get(name) is not None:
                    content[name] = a[name]
            out.append(outbound.Draft(channel_id=ctx.channel["id"], kind="template", content=content,
                                      contact_id=ctx.contact_id, idempotency_key=key))
    return out


def _act(ctx: Context, rule: dict, claimed, placeholders: dict) -> list:
    if ctx.handler == "human":
        ctx.decide(responder="rules", outcome="skipped", rule=rule, reason="handler_human", decision_id=claimed)
        return []
    if rule["kind"] == "flow":
        return flow_runner.start(ctx, rule)
    actions = rule["definition"].get("actions") or []
    drafts = _drafts(ctx, rule, placeholders)
    done = [{"type": a["type"]} for a in actions if a["type"] in ("reply", "template")]
    flow, flow_plan = None, None
    started = next((a for a in actions if a["type"] == "flow"), None)
    if started is not None:
        flow = flow_runner.by_name(ctx, started["name"].strip())
        if flow is None:
            done.append({"type": "flow", "name": started["name"], "missing": True})
        else:
            flow_plan = flow_runner.plan(ctx, flow, flow["definition"]["start"])
    sent, why = ctx.send(drafts + (flow_plan.drafts if flow_plan else []))
    attrs = [a for a in actions if a["type"] == "set_attribute"]
    tags = [a["tag"].strip() for a in actions if a["type"] == "set_tag"]
    if attrs:
        def change(profile):
            for a in attrs:
                profile[a["name"]] = a["value"]
        contacts.update_profile(ctx.conn, account_id=ctx.account_id, contact_id=ctx.contact_id, change=change)
        done += [{"type": "set_attribute", "name": a["name"]} for a in attrs]
    if tags:   # tags have their own table (gateway/contact_tags.py), not the profile
        contact_tags.add(ctx.conn, account_id=ctx.account_id, contact_id=ctx.contact_id, tags=tags)
        done += [{"type": "set_tag", "tag": t} for t in tags]
    for a in actions:
        if a["type"] == "assign" and threads.assign_team(ctx.conn, account_id=ctx.account_id, thread_id=ctx.thread_id,
                                                         team=a["team"].strip(), by="automation"):
            done.append({"type": "assign", "team": a["team"].strip()})
    if flow_plan is not None:
        done.append({"type": "flow", "name": flow["name"], "automation_id": str(flow["id"])})
        done += flow_runner.settle(ctx, flow, flow_plan, why)
    if rule["kind"] == "handoff" or any(a["type"] == "handoff" for a in actions):
        if ctx.hand_off(reason="rule", rule=rule):
            done.append({"type": "handoff"})
    outcome = {None: "acted", "cap": "capped"}.get(why, "refused")
    ctx.decide(responder="rules", outcome=outcome, rule=rule, reason=why, actions=done, sent=sent,
               decision_id=claimed)
    if why is not None:
        log.info("automated reply not sent", extra={"why": why, "rule_kind": rule["kind"]})
    return sent


def respond_with_rules(ctx: Context) -> list | None:
    for rule in rules.active_for(ctx.conn, account_id=ctx.account_id, channel_id=ctx.channel["id"]):
        hit = _match(ctx, rule)
        if hit is not None:
            return _act(ctx, rule, *hit)
    return None


# The kinds of message a knowledge base can answer: what the customer typed.
_ASKING_KINDS = frozenset({"text"})


def _unanswered_in_a_row(ctx: Context) -> int:
    """How many of the thread's latest decisions are the assistant declining, back to the last other one."""
    rows = ctx.conn.execute(
        "SELECT responder, outcome FROM thread_decisions WHERE account_id = %s AND thread_id = %s "
        "ORDER BY id DESC LIMIT %s", (ctx.account_id, ctx.thread_id, ctx.setting("handoff_after_unanswered"))).fetchall()
    n = 0
    for r in rows:
        if (r["responder"], r["outcome"]) != ("assistant", "declined"):
            break
        n += 1
    return n


def respond_with_assistant(ctx: Context) -> list | None:
    """The level-1 assistant (gateway/assistant/), when no rule matched and the bot handles the thread: an
    answer from the knowledge base above the confidence threshold, else a hand-off to a person. An account
    without a knowledge base has no assistant: the message is left for people without a hand-off."""
    if ctx.kind not in _ASKING_KINDS or not (ctx.text or "").strip() or not assistant_kb.has_entries(
            ctx.conn, account_id=ctx.account_id):
        return None
    answer = assistant.reply(ctx.conn, account_id=ctx.account_id, text=ctx.text, language=ctx.languages[0])
    if answer is None:
        if _unanswered_in_a_row(ctx) + 1 < ctx.setting("handoff_after_unanswered"):
            # Not yet: ask the customer to say it another way (the next try may match an entry).
            sent, why = ctx.send([outbound.Draft(
                channel_id=ctx.channel["id"], kind="text", contact_id=ctx.contact_id,
                content={"body": flows.builtin(_REPHRASE, ctx.languages)},
                idempotency_key=f"assistant:{ctx.message['id']}")])
            ctx.decide(responder="assistant", outcome={None: "declined", "cap": "capped"}.get(why, "refused"),
                       reason=why or "below_threshold", actions=[{"type": "rephrase"}], sent=sent)
            return sent
        handed = ctx.hand_off(reason="assistant")
        ctx.decide(responder="assistant", outcome="handed_off" if handed else "skipped",
                   reason="below_threshold", actions=[{"type": "handoff"}] if handed else [])
        return []
    sent, why = ctx.send([outbound.Draft(channel_id=ctx.channel["id"], kind="text", content={"body": answer.text},
                                         contact_id=ctx.contact_id,
                                         idempotency_key=f"assistant:{ctx.message['id']}")])
    ctx.decide(responder="assistant", outcome={None: "answered", "cap": "capped"}.get(why, "refused"), reason=why,
               actions=[{"type": "reply", "entry_id": str(answer.entry_id), "score": answer.score,
                         "source": answer.source}], sent=sent)
    return sent


RESPONDERS: list[Responder] = [
    # An answer to a survey is consumed before any rule sees it, even on a thread a person handles.
    Responder("surveys", consumer(surveys.on_inbound), when_human=True),
    # The answer to the menu or question the thread waits at is the flow's, whatever a rule says of it.
    Responder("flows", lambda ctx: flow_runner.respond(ctx)),
    # when_human: it records why it stayed silent on a rule that matched a thread a person handles.
    Responder("rules", respond_with_rules, when_human=True),
    Responder("assistant", respond_with_assistant),
]


_ENGAGED = ("SELECT EXISTS (SELECT 1 FROM automations WHERE account_id = %(a)s AND enabled) "
            "OR EXISTS (SELECT 1 FROM kb_entries WHERE account_id = %(a)s AND enabled) "
            "OR EXISTS (SELECT 1 FROM survey_requests WHERE account_id = %(a)s AND state IN ('sent', 'answered')) "
            "AS engaged")


def _engaged(conn, account_id) -> bool:
    """Whether any responder could act for the account: one indexed query instead of a savepoint and a query
    per responder, for the many accounts (or the long stretches) with no rules, knowledge base or open survey."""
    return conn.execute(_ENGAGED, {"a": account_id}).fetchone()["engaged"]


def on_inbound(conn, *, account_id, channel: dict, contact_id, thread_id, message: dict, kind: str,
               text: str | None, content: dict, consent_keyword: str | None = None,
               now: datetime | None = None) -> list:
    """Run the responders on one newly recorded inbound message; returns message ids to enqueue after commit."""
    if kind in IGNORED_KINDS or consent_keyword is not None or not _engaged(conn, account_id):
        return []
    ctx = Context(conn, account_id, channel, contact_id, thread_id, message, kind, text, content or {},
                  now or datetime.now(timezone.utc))
    try:
        with conn.transaction():
            for responder in RESPONDERS:
                if not responder.when_human and ctx.handler == "human":
                    continue
                result = responder.respond(ctx)
                if result is not None:
                    return list(result)
    except Exception as exc:
        log.warning("automation failed; the message is kept without an automated answer",
                    extra={"error": type(exc).__name__}, exc_info=True)
    return []

"""Assignment and routing: which team and which agent handle a thread.

One function, ``assign``, changes a thread's team and agent, whoever asks (the API, routing, sticky routing,
an automation, the queue): it updates the thread, records a ``thread_events`` row (kind ``assigned`` or
``unassigned``, ids and the reason only) and emits ``thread.assigned`` / ``thread.unassigned``.

Routing (``on_customer_message``, called by the inbound worker for each customer message) runs for a thread
that has neither team nor agent yet, or that this very message reopened:

1. the first enabled routing rule by priority whose conditions all hold names a team (and maybe an agent);
2. sticky: the agent who last held a thread of this contact (or of contacts merged into it), on any channel,
   gets it back when available and under capacity (and, when a rule matched, a member of the rule's team);
3. else the rule's agent when eligible, else the team's strategy picks among its members who are
   ``available`` and under capacity: ``round_robin`` (the member whose turn in this team is oldest) or
   ``least_busy`` (fewest open or pending threads, then the oldest turn); members who speak the contact's
   language go first when any does;
4. nobody eligible: the thread waits in the team's queue (team set, no agent), longest waiting first, until
   an agent of the team becomes available, joins it, or frees capacity (``drain_agent``).

Locks. Assigners serialise on the agent row (``FOR NO KEY UPDATE``: foreign-key checks of other writers are
not blocked), so two workers never push one agent past capacity. Routing and draining run inside the
inbound worker's batch transaction, which already holds thread rows: there they take agent rows and queued
threads with SKIP LOCKED (a locked agent counts as busy) and never wait, so they cannot deadlock against
an API call. Only the API's explicit assignment waits for its one agent, before it locks the thread.
"""
from __future__ import annotations

import re
import uuid
from functools import cached_property

from psycopg.types.json import Jsonb

from gateway import agents, attributes, contact_tags, contacts, events, surveys, thread_events
from gateway.automation import text_match
from gateway.db import uuid7

REASONS = ("api", "routing", "sticky", "automation", "queue")
WORKING = ("open", "pending")   # statuses that count against an agent's capacity and wait in a queue


class _Nobody:
    def __repr__(self):
        return "NOBODY"


NOBODY = _Nobody()   # assign(agent_id=NOBODY): no agent (the thread waits in its team's queue); team_id=NOBODY: no team


class Refused(Exception):
    """An assignment the caller asked for that cannot be made: ``status`` 404 or 409, a slug, what to do."""

    def __init__(self, status: int, slug: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.slug, self.detail, self.extra = status, slug, detail, extra


# --- reading --------------------------------------------------------------------------------------------

def _thread(conn, account_id, thread_id, lock: bool = True) -> dict | None:
    return conn.execute(
        "SELECT id, channel_id, contact_id, status, team_id, assignee_id FROM threads "
        "WHERE account_id = %s AND id = %s" + (" FOR NO KEY UPDATE" if lock else ""),
        (account_id, thread_id)).fetchone()


def team_row(conn, account_id, team_id) -> dict | None:
    return conn.execute("SELECT id, name, strategy FROM teams WHERE account_id = %s AND id = %s",
                        (account_id, team_id)).fetchone()


def _agent(conn, account_id, agent_id, *, lock: str | None = None) -> dict | None:
    """The agent row; ``lock`` 'wait' or 'skip' (SKIP LOCKED: None when another transaction holds it)."""
    suffix = {None: "", "wait": " FOR NO KEY UPDATE", "skip": " FOR NO KEY UPDATE SKIP LOCKED"}[lock]
    return conn.execute("SELECT id, external_id, name, availability, languages, capacity FROM agents "
                        "WHERE account_id = %s AND id = %s" + suffix, (account_id, agent_id)).fetchone()


def load_of(conn, *, account_id, agent_id, except_thread=None) -> int:
    """The open and pending threads the agent holds (besides ``except_thread``)."""
    return conn.execute(
        "SELECT count(*) AS n FROM threads WHERE account_id = %s AND assignee_id = %s "
        "AND status IN ('open', 'pending') "
        "AND id IS DISTINCT FROM %s", (account_id, agent_id, except_thread)).fetchone()["n"]


def _eligible(conn, account_id, agent_id, thread_id) -> dict | None:
    """The agent, locked, when available and under capacity without this thread; else None."""
    agent = _agent(conn, account_id, agent_id, lock="skip")
    if agent is None or agent["availability"] != "available":
        return None
    if load_of(conn, account_id=account_id, agent_id=agent_id, except_thread=thread_id) >= agent["capacity"]:
        return None
    return agent


def _team_for_agent(conn, account_id, agent_id, current_team):
    """The team a thread goes with when given to an agent without naming one: its current team when the agent
    is in it, else the agent's team when they have exactly one, else none."""
    teams = [r["team_id"] for r in conn.execute(
        "SELECT team_id FROM team_members WHERE account_id = %s AND agent_id = %s", (account_id, agent_id))]
    if current_team in teams:
        return current_team
    return teams[0] if len(teams) == 1 else None


# --- choosing within a team -----------------------------------------------------------------------------

def _base(language: str | None) -> str | None:
    return language.replace("-", "_").split("_")[0].lower() if language else None


def select_agent(conn, *, account_id, team: dict, thread: dict) -> dict | None:
    """The member the team's strategy gives the thread to, locked; None when nobody is eligible."""
    rows = conn.execute(
        f"SELECT a.id, a.languages, a.capacity, m.last_assigned_at, {agents.LOAD_SQL} AS load "
        "FROM team_members m JOIN agents a ON a.account_id = m.account_id AND a.id = m.agent_id "
        "WHERE m.account_id = %s AND m.team_id = %s AND a.availability = 'available'",
        (account_id, team["id"])).fetchall()
    for r in rows:   # the thread itself does not count against the agent who holds it already
        r["load"] -= 1 if r["id"] == thread["assignee_id"] and thread["status"] in WORKING else 0
    rows = [r for r in rows if r["load"] < r["capacity"]]
    if not rows:
        return None
    if any(r["languages"] for r in rows):
        found = conn.execute("SELECT language FROM contacts WHERE account_id = %s AND id = %s",
                             (account_id, thread["contact_id"])).fetchone()
        wanted = _base(found["language"]) if found else None
        speakers = [r for r in rows if wanted and wanted in {_base(x) for x in r["languages"]}]
        rows = speakers or rows

    def turn(r):   # never assigned in this team goes first
        return (r["last_assigned_at"] is not None, r["last_assigned_at"] or 0, r["id"])

    if team["strategy"] == "least_busy":
        rows.sort(key=lambda r: (r["load"], *turn(r)))
    else:
        rows.sort(key=turn)
    for r in rows:
        agent = _eligible(conn, account_id, r["id"], thread["id"])   # re-checked under the agent's lock
        if agent is not None:
            return agent
    return None


# --- assigning ------------------------------------------------------------------------------------------

def _apply(conn, account_id, thread: dict, team_id, agent_id, *, actor: str, reason: str,
           forced: bool = False) -> dict:
    changed = (thread["team_id"], thread["assignee_id"]) != (team_id, agent_id)
    out = {"thread_id": thread["id"], "team_id": team_id, "agent_id": agent_id, "changed": changed, "reason": reason}
    if not changed:
        return out
    conn.execute("UPDATE threads SET team_id = %s, assignee_id = %s, assigned_at = now() "
                 "WHERE account_id = %s AND id = %s", (team_id, agent_id, account_id, thread["id"]))
    if team_id is not None and agent_id is not None and agent_id != thread["assignee_id"]:
        # The round robin's turn. clock_timestamp, not now(): one worker batch assigns several threads in one
        # transaction, and each must see the previous one's turn taken.
        conn.execute("UPDATE team_members SET last_assigned_at = clock_timestamp() "
                     "WHERE account_id = %s AND team_id = %s AND agent_id = %s", (account_id, team_id, agent_id))
    kind = "unassigned" if agent_id is None and (thread["assignee_id"] is not None or team_id is None) else "assigned"
    ids = {"team_id": _s(team_id), "agent_id": _s(agent_id), "reason": reason}
    if forced:
        ids["forced"] = True
    thread_events.record(conn, account_id=account_id, thread_id=thread["id"], kind=kind, actor=actor, detail=ids)
    events.emit(conn, account_id, f"thread.{kind}",
                {"thread_id": _s(thread["id"]), "channel_id": _s(thread["channel_id"]), **ids,
                 "previous_team_id": _s(thread["team_id"]), "previous_agent_id": _s(thread["assignee_id"]),
                 "by": actor}, subject_id=thread["id"])
    thread.update(team_id=team_id, assignee_id=agent_id)
    return out


def _s(value) -> str | None:
    return None if value is None else str(value)


def assign(conn, *, account_id, thread_id, team_id=None, agent_id=None, actor: str, force: bool = False,
           reason: str) -> dict:
    """Give the thread to a team and/or an agent. Returns {thread_id, team_id, agent_id, changed, reason}.

    - ``agent_id``: that agent (404 unknown in this account; 409 when ``team_id`` is given and the agent is
      not in it, or when they hold ``capacity`` open or pending threads already, unless ``force``). Without
      ``team_id`` the thread keeps its team when the agent is in it, else takes the agent's only team.
    - ``team_id`` alone: the team (404 unknown); its strategy picks the agent, or the thread waits in its
      queue. A thread already in that team keeps its agent.
    - ``agent_id=NOBODY``: no agent; the thread waits in its team's queue (``team_id`` moves it to another
      team first; ``team_id=NOBODY`` takes it out of any team).
    Availability is not checked here: a person may give a thread to a colleague who is away.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown assignment reason {reason!r}")
    agent = None
    if agent_id is not None and agent_id is not NOBODY:
        # The agent's lock first, then the thread's: the inbound worker holds threads and never waits for agents.
        agent = _agent(conn, account_id, agent_id, lock="wait")
        if agent is None:
            raise Refused(404, "agent-not-found", f"no agent with id {agent_id} in this account; "
                          "list them with GET /v1/agents")
    thread = _thread(conn, account_id, thread_id)
    if thread is None:
        raise Refused(404, "thread-not-found", f"no thread with id {thread_id} in this account")
    team = None
    if team_id is not None and team_id is not NOBODY:
        team = team_row(conn, account_id, team_id)
        if team is None:
            raise Refused(404, "team-not-found", f"no team with id {team_id} in this account; "
                          "list them with GET /v1/teams")
    if agent is not None:
        if team is not None:
            if not agents.is_member(conn, account_id=account_id, team_id=team["id"], agent_id=agent["id"]):
                raise Refused(409, "agent-not-in-team",
                              f"agent {agent['id']} ({agent['external_id']}) is not a member of team {team['id']} "
                              f"({team['name']}); add them with PUT /v1/teams/{team['id']}/members/{agent['id']} "
                              "or pick one of its members", agent_id=str(agent["id"]), team_id=str(team["id"]))
            target_team = team["id"]
        elif team_id is NOBODY:
            target_team = None
        else:
            target_team = _team_for_agent(conn, account_id, agent["id"], thread["team_id"])
        forced = False
        if thread["status"] in WORKING and thread["assignee_id"] != agent["id"]:
            load = load_of(conn, account_id=account_id, agent_id=agent["id"], except_thread=thread["id"])
            if load >= agent["capacity"]:
                if not force:
                    raise Refused(409, "agent-at-capacity",
                                  f"agent {agent['id']} ({agent['external_id']}) is at capacity: {load} open or "
                                  f"pending threads of {agent['capacity']}; resolve one, raise their capacity "
                                  "(PATCH /v1/agents/{id}), pick another agent, or send force: true",
                                  agent_id=str(agent["id"]), capacity=agent["capacity"], open_threads=load)
                forced = True
        return _apply(conn, account_id, thread, target_team, agent["id"], actor=actor, reason=reason, forced=forced)
    if agent_id is NOBODY:
        target_team = team["id"] if team else None if team_id is NOBODY else thread["team_id"]
        return _apply(conn, account_id, thread, target_team, None, actor=actor, reason=reason)
    if team is None:
        if team_id is NOBODY:
            return _apply(conn, account_id, thread, None, None, actor=actor, reason=reason)
        raise ValueError("assign needs a team_id or an agent_id")
    if thread["team_id"] == team["id"] and thread["assignee_id"] is not None:
        return _apply(conn, account_id, thread, team["id"], thread["assignee_id"], actor=actor, reason=reason)
    chosen = (select_agent(conn, account_id=account_id, team=team, thread=thread)
              if thread["status"] in WORKING else None)
    return _apply(conn, account_id, thread, team["id"], chosen["id"] if chosen else None, actor=actor, reason=reason)


def assign_team_by_name(conn, *, account_id, thread_id, name: str, actor: str) -> dict:
    """An automation's hand-off to a team by name (created if nobody made it yet), then the team's strategy."""
    team = agents.ensure_team(conn, account_id=account_id, name=name)
    return assign(conn, account_id=account_id, thread_id=thread_id, team_id=team["id"], actor=actor,
                  reason="automation")


# --- the queue ------------------------------------------------------------------------------------------

_WAITING = "coalesce(t.last_inbound_at, t.created_at)"


def queue(conn, *, account_id, team_id, limit: int = 50, after=None) -> list[dict]:
    """The team's unassigned open and pending threads, longest waiting first (by the customer's last message);
    ``after`` is the previous page's last (waiting_since, id)."""
    from gateway import threads
    where, params = "", []
    if after is not None:
        where, params = f" AND ({_WAITING}, t.id) > (%s, %s)", list(after)
    rows = conn.execute(
        f"SELECT {threads._COLUMNS}, {_WAITING} AS waiting_since FROM threads t JOIN channels ch "
        "ON ch.account_id = t.account_id AND ch.id = t.channel_id WHERE t.account_id = %s AND t.team_id = %s "
        f"AND t.assignee_id IS NULL AND t.status IN ('open', 'pending'){where} ORDER BY {_WAITING}, t.id LIMIT %s",
        (account_id, team_id, *params, limit)).fetchall()
    return [threads._view(conn, account_id, r) for r in rows]


def drain_agent(conn, *, account_id, agent_id, actor: str = "routing") -> list:
    """Give the agent, when available, the longest waiting threads of their teams' queues, up to their
    capacity. Returns the thread ids assigned."""
    agent = _agent(conn, account_id, agent_id, lock="skip")
    if agent is None or agent["availability"] != "available":
        return []
    room = agent["capacity"] - load_of(conn, account_id=account_id, agent_id=agent_id)
    if room <= 0:
        return []
    waiting = conn.execute(
        "SELECT t.id, t.channel_id, t.contact_id, t.status, t.team_id, t.assignee_id FROM threads t "
        "WHERE t.account_id = %s AND t.assignee_id IS NULL AND t.status IN ('open', 'pending') AND t.team_id IN "
        "(SELECT team_id FROM team_members WHERE account_id = %s AND agent_id = %s) "
        f"ORDER BY {_WAITING}, t.id LIMIT %s FOR NO KEY UPDATE OF t SKIP LOCKED",
        (account_id, account_id, agent_id, room)).fetchall()
    for t in waiting:
        _apply(conn, account_id, t, t["team_id"], agent_id, actor=actor, reason="queue")
    return [t["id"] for t in waiting]


def on_thread_closed(conn, *, account_id, thread_id) -> list:
    """A thread was resolved: its agent has room for the next one waiting in their teams' queues."""
    row = conn.execute("SELECT assignee_id FROM threads WHERE account_id = %s AND id = %s",
                       (account_id, thread_id)).fetchone()
    if row is None or row["assignee_id"] is None:
        return []
    return drain_agent(conn, account_id=account_id, agent_id=row["assignee_id"])


# --- routing a customer's message -----------------------------------------------------------------------

class _Facts:
    """What rule conditions look at, read only when a rule asks."""

    def __init__(self, conn, account_id, contact_id, channel: dict, text: str | None):
        self.conn, self.account_id, self.contact_id = conn, account_id, contact_id
        self.channel, self.text = channel, text

    @cached_property
    def language(self) -> str | None:
        row = self.conn.execute("SELECT language FROM contacts WHERE account_id = %s AND id = %s",
                                (self.account_id, self.contact_id)).fetchone()
        return row["language"] if row else None

    @cached_property
    def profile(self) -> dict:
        return contacts.read_profile(self.conn, account_id=self.account_id, contact_id=self.contact_id)

    @cached_property
    def tags(self) -> set[str]:
        return set(contact_tags.tags_of(self.conn, account_id=self.account_id, contact_id=self.contact_id))

    def has_any_tag(self, wanted: list[str]) -> bool:
        """Tags are matched exactly as stored (gateway/contact_tags.py). A profile written before migration
        0019 may still hold some under "tags" until its next write: read it only when the table had none."""
        wanted = {t.strip() for t in wanted}
        return bool(wanted & self.tags) or bool(wanted & set(contact_tags.legacy(self.profile)))


def _same_value(wanted, have) -> bool:
    """A rule's attribute value against the profile's, normalised as attribute filters are
    (gateway/attributes.py): text case- and space-insensitive, numbers by value, booleans from true/yes/1;
    a list matches when any item does."""
    type_ = "boolean" if isinstance(wanted, bool) else "number" if isinstance(wanted, int | float) else "string"
    want = attributes.index_values(type_, wanted)
    return bool(want) and any(attributes.index_values(type_, h) == want
                              for h in (have if isinstance(have, list) else [have]))


def matches(conditions: dict, facts: _Facts) -> bool:
    """Whether every condition holds (cheap ones first; the profile is decrypted only when asked)."""
    c = conditions
    if "channel_id" in c and c["channel_id"] != str(facts.channel["id"]):
        return False
    if "channel_kind" in c and c["channel_kind"] != facts.channel["kind"]:
        return False
    if "keyword" in c and not text_match.keyword_matches(c["keyword"], facts.text):
        return False
    if "language" in c and (facts.language is None or _base(c["language"]) != _base(facts.language)):
        return False
    if "tags" in c and not facts.has_any_tag(c["tags"]):
        return False
    if "attributes" in c and not all(name in facts.profile and _same_value(value, facts.profile[name])
                                     for name, value in c["attributes"].items()):
        return False
    return True


def _answers_survey(conn, account_id, thread_id, kind: str, text: str | None, content: dict | None) -> bool:
    """Whether this message, which reopened the thread, answers its survey: the surveys responder then puts
    the thread back to resolved, so it is no new conversation to route (mirrors surveys.on_inbound)."""
    req = conn.execute(
        "SELECT r.kind, r.state, r.follow_up_state, r.expires_at < now() AS expired FROM survey_requests r "
        "JOIN threads t ON t.account_id = r.account_id AND t.id = r.thread_id AND t.resolution_seq = r.resolution_seq "
        "WHERE r.account_id = %s AND r.thread_id = %s AND r.state IN ('sent', 'answered')",
        (account_id, thread_id)).fetchone()
    if req is None or req["expired"]:
        return False
    content = content or {}
    tapped = surveys.reply_payload(kind, content)
    ours = tapped is not None and tapped.startswith(surveys.PAYLOAD_PREFIX)
    if req["state"] == "answered":
        return ours or (req["follow_up_state"] == "awaiting" and kind == "text" and bool(text and text.strip()))
    return surveys.parse_score(req["kind"], kind, text, content) is not None


def on_customer_message(conn, *, account_id, thread_id, contact_id, channel: dict, text: str | None,
                        kind: str = "text", content: dict | None = None) -> dict | None:
    """Route the thread of a newly recorded customer message when it has neither team nor agent, or when this
    message reopened it. Returns the assignment made (or None). For an account with no agent and no routing
    rule this costs nothing but a per-process cache look-up."""
    if not agents.routing_configured(conn, account_id):
        return None
    thread = conn.execute(
        "SELECT id, channel_id, contact_id, status, team_id, assignee_id, reopened_at = now() AS reopened, "
        "assigned_at = now() AS routed_now FROM threads WHERE account_id = %s AND id = %s",
        (account_id, thread_id)).fetchone()
    if thread is None or thread["status"] not in WORKING or thread["routed_now"]:
        return None   # routed already in this transaction (an earlier message of the same batch)
    if not (thread["reopened"] or (thread["team_id"] is None and thread["assignee_id"] is None)):
        return None
    if thread["reopened"] and _answers_survey(conn, account_id, thread_id, kind, text, content):
        return None
    return route(conn, account_id=account_id, thread=thread, contact_id=contact_id, channel=channel, text=text)


def _last_agent(conn, account_id, contact_id):
    """The agent of the contact's (or a contact merged into it) most recently assigned thread, any channel."""
    row = conn.execute(
        "SELECT t.assignee_id FROM threads t WHERE t.account_id = %s AND t.assignee_id IS NOT NULL "
        "AND t.contact_id IN (SELECT id FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s)) "
        "ORDER BY t.assigned_at DESC NULLS LAST, t.id DESC LIMIT 1",
        (account_id, account_id, contact_id, contact_id)).fetchone()
    return row["assignee_id"] if row else None


def first_rule(conn, *, account_id, facts: _Facts) -> dict | None:
    for rule in conn.execute("SELECT id, conditions, team_id, agent_id FROM routing_rules "
                             "WHERE account_id = %s AND enabled ORDER BY priority, id", (account_id,)).fetchall():
        if matches(rule["conditions"], facts):
            return rule
    return None


def route(conn, *, account_id, thread: dict, contact_id, channel: dict, text: str | None) -> dict | None:
    facts = _Facts(conn, account_id, contact_id, channel, text)
    rule = first_rule(conn, account_id=account_id, facts=facts)
    last = _last_agent(conn, account_id, contact_id)
    if last is not None:
        fits = rule is None or agents.is_member(conn, account_id=account_id, team_id=rule["team_id"], agent_id=last)
        if fits and _eligible(conn, account_id, last, thread["id"]) is not None:
            team_id = rule["team_id"] if rule is not None else _team_for_agent(conn, account_id, last,
                                                                                thread["team_id"])
            return _apply(conn, account_id, thread, team_id, last, actor="routing", reason="sticky")
    if rule is not None and rule["agent_id"] is not None \
            and _eligible(conn, account_id, rule["agent_id"], thread["id"]) is not None:
        return _apply(conn, account_id, thread, rule["team_id"], rule["agent_id"], actor="routing", reason="routing")
    team_id = rule["team_id"] if rule is not None else thread["team_id"]
    if team_id is None:
        return None
    team = team_row(conn, account_id, team_id)
    if team is None:
        return None
    chosen = select_agent(conn, account_id=account_id, team=team, thread=thread)
    return _apply(conn, account_id, thread, team_id, chosen["id"] if chosen else None, actor="routing",
                  reason="routing")


# --- routing rules: validation and storage --------------------------------------------------------------

CONDITIONS = ("channel_id", "channel_kind", "language", "tags", "attributes", "keyword")
CHANNEL_KINDS = ("whatsapp", "messenger", "instagram", "twilio", "sandbox")
_RULE_FIELDS = ("name", "priority", "enabled", "conditions", "team_id", "agent_id")
_LANGUAGE = re.compile(r"[a-zA-Z]{2,3}([_-][a-zA-Z0-9]+)?")
_RULE = "id, name, priority, enabled, conditions, team_id, agent_id, created_at, updated_at"


def as_uuid(value):
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def rule_problems(conn, *, account_id, doc: dict) -> list[dict]:
    """Every problem of a routing rule document, each with a JSON pointer and how to fix it."""
    found: list[dict] = []

    def bad(pointer: str, detail: str) -> None:
        found.append({"pointer": pointer, "detail": detail})

    for k in doc:
        if k not in _RULE_FIELDS:
            bad(f"/{k}", f"unknown field; a rule has {', '.join(_RULE_FIELDS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        bad("/name", "required: a name of 1 to 200 characters")
    priority = doc.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1_000_000:
        bad("/priority", "a whole number from 0 to 1000000 (lower runs first)")
    if not isinstance(doc.get("enabled", True), bool):
        bad("/enabled", "true or false")
    team_id = as_uuid(doc.get("team_id"))
    if team_id is None:
        bad("/team_id", "required: the id of the team the rule routes to (GET /v1/teams)")
    elif team_row(conn, account_id, team_id) is None:
        bad("/team_id", f"no team with id {team_id} in this account")
        team_id = None
    if doc.get("agent_id") is not None:
        agent_id = as_uuid(doc["agent_id"])
        if agent_id is None:
            bad("/agent_id", "an agent id (GET /v1/agents), or null to let the team's strategy choose")
        elif _agent(conn, account_id, agent_id) is None:
            bad("/agent_id", f"no agent with id {agent_id} in this account")
        elif team_id is not None and not agents.is_member(conn, account_id=account_id, team_id=team_id,
                                                          agent_id=agent_id):
            bad("/agent_id", f"agent {agent_id} is not a member of team {team_id}; add them to it first")
    conditions = doc.get("conditions", {})
    if not isinstance(conditions, dict):
        bad("/conditions", f"an object with any of {', '.join(CONDITIONS)} (all must hold; empty matches every thread)")
        return found
    _condition_problems(conn, account_id, conditions, bad)
    return found


def _condition_problems(conn, account_id, c: dict, bad) -> None:
    p = "/conditions"
    for k in c:
        if k not in CONDITIONS:
            bad(f"{p}/{k}", f"unknown condition; use {', '.join(CONDITIONS)}")
    if "channel_id" in c:
        channel_id = as_uuid(c["channel_id"])
        if channel_id is None or conn.execute("SELECT 1 FROM channels WHERE account_id = %s AND id = %s",
                                              (account_id, channel_id)).fetchone() is None:
            bad(f"{p}/channel_id", "the id of one of the account's channels (GET /v1/channels)")
    if "channel_kind" in c and c["channel_kind"] not in CHANNEL_KINDS:
        bad(f"{p}/channel_kind", f"one of {', '.join(CHANNEL_KINDS)}")
    if "language" in c and not (isinstance(c["language"], str) and _LANGUAGE.fullmatch(c["language"])):
        bad(f"{p}/language", "a language code such as es, en, pt_BR (matched on its base: es matches es_MX)")
    if "tags" in c:
        tags = c["tags"]
        if not isinstance(tags, list) or not tags:
            bad(f"{p}/tags", "a non-empty list of tags (the contact has any of them)")
        else:
            for i, t in enumerate(tags):
                if not isinstance(t, str) or not t.strip() or len(t) > 64:
                    bad(f"{p}/tags/{i}", "a tag of 1 to 64 characters")
    if "attributes" in c:
        attrs = c["attributes"]
        if not isinstance(attrs, dict) or not attrs:
            bad(f"{p}/attributes", "a non-empty object of attribute name → value (all must be equal)")
        else:
            for name, value in attrs.items():
                if not text_match.ATTRIBUTE.fullmatch(name):
                    bad(f"{p}/attributes/{name}", "an attribute name: a letter or _, then letters, digits, _ . -")
                elif not isinstance(value, str | int | float | bool):
                    bad(f"{p}/attributes/{name}", "a string, number or boolean to compare with")
    if "keyword" in c:
        kw = c["keyword"]
        if not isinstance(kw, dict):
            bad(f"{p}/keyword", "an object: {match: whole|contains|regex, keywords: [...]} or {match: regex, pattern}")
        else:
            for k in kw:
                if k not in ("match", "keywords", "pattern"):
                    bad(f"{p}/keyword/{k}", "unknown field; use match, keywords or pattern")
            text_match.trigger_problems(kw, f"{p}/keyword", bad)


def _values(doc: dict) -> tuple:
    return (doc["name"].strip(), doc.get("priority", 100), doc.get("enabled", True), Jsonb(doc.get("conditions", {})),
            as_uuid(doc["team_id"]), as_uuid(doc["agent_id"]) if doc.get("agent_id") else None)


def create_rule(conn, *, account_id, doc: dict) -> dict:
    row = conn.execute(
        "INSERT INTO routing_rules (account_id, id, name, priority, enabled, conditions, team_id, agent_id) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_RULE}", (account_id, uuid7(), *_values(doc))).fetchone()
    agents.forget(account_id)
    return row


def replace_rule(conn, *, account_id, rule_id, doc: dict) -> dict | None:
    row = conn.execute(
        "UPDATE routing_rules SET name = %s, priority = %s, enabled = %s, conditions = %s, team_id = %s, "
        f"agent_id = %s, updated_at = now() WHERE account_id = %s AND id = %s RETURNING {_RULE}",
        (*_values(doc), account_id, rule_id)).fetchone()
    agents.forget(account_id)
    return row


def get_rule(conn, *, account_id, rule_id) -> dict | None:
    return conn.execute(f"SELECT {_RULE} FROM routing_rules WHERE account_id = %s AND id = %s",
                        (account_id, rule_id)).fetchone()


def list_rules(conn, *, account_id) -> list[dict]:
    return conn.execute(f"SELECT {_RULE} FROM routing_rules WHERE account_id = %s ORDER BY priority, id",
                        (account_id,)).fetchall()


def delete_rule(conn, *, account_id, rule_id) -> bool:
    done = conn.execute("DELETE FROM routing_rules WHERE account_id = %s AND id = %s",
                        (account_id, rule_id)).rowcount > 0
    agents.forget(account_id)
    return done

"""Agents and teams: the CRM's staff who work the threads, and the groups threads are routed to.

An agent carries the CRM's id (``external_id``), a display name, an availability (only ``available`` agents
get threads by routing), the languages they answer in and a capacity: how many open or pending threads they
hold at once. A team has members and a strategy for choosing among them (gateway/routing.py). Staff names
and ids are business data, not customers' personal data: they are stored in clear.
"""
from __future__ import annotations

import time

import psycopg.errors

from gateway.db import uuid7

AVAILABILITY = ("available", "away", "offline")
STRATEGIES = ("round_robin", "least_busy")

# An agent's load: the open and pending threads they hold (threads_by_assignee answers it from the index).
LOAD_SQL = ("(SELECT count(*) FROM threads lt WHERE lt.account_id = a.account_id AND lt.assignee_id = a.id "
            "AND lt.status IN ('open', 'pending'))")

_TEAM = "tm.id, tm.name, tm.strategy, tm.created_at, tm.updated_at"
_AGENT = (f"a.id, a.external_id, a.name, a.availability, a.languages, a.capacity, {LOAD_SQL} AS open_threads, "
          "a.created_at, a.updated_at")


class Taken(Exception):
    """A unique name (team name, agent external id) is in use."""


class InUse(Exception):
    """Routing rules name the team or agent: it cannot be deleted under them."""

    def __init__(self, rule_ids: list):
        super().__init__(", ".join(str(r) for r in rule_ids))
        self.rule_ids = rule_ids


# --- whether an account routes at all (the inbound worker asks for every customer message) -------------

_configured: dict = {}
CONFIGURED_TTL_S = 5.0


def routing_configured(conn, account_id) -> bool:
    """Whether the account has any agent or enabled routing rule. Cached briefly per process: the inbound
    worker asks for every customer message, and most accounts that do not route never will. Changes made
    in this process forget the entry at once; another process sees them within CONFIGURED_TTL_S (a thread
    that arrives meanwhile is routed by its next message)."""
    hit = _configured.get(account_id)
    if hit is not None and time.monotonic() - hit[1] < CONFIGURED_TTL_S:
        return hit[0]
    value = conn.execute("SELECT EXISTS (SELECT 1 FROM agents WHERE account_id = %s) "
                         "OR EXISTS (SELECT 1 FROM routing_rules WHERE account_id = %s AND enabled) AS x",
                         (account_id, account_id)).fetchone()["x"]
    _configured[account_id] = (value, time.monotonic())
    return value


def forget(account_id) -> None:
    _configured.pop(account_id, None)


# --- teams ---------------------------------------------------------------------------------------------

def create_team(conn, *, account_id, name: str, strategy: str = "round_robin") -> dict:
    row = conn.execute(
        "INSERT INTO teams AS tm (account_id, id, name, strategy) VALUES (%s, %s, %s, %s) "
        f"ON CONFLICT (account_id, name) DO NOTHING RETURNING {_TEAM}",
        (account_id, uuid7(), name.strip(), strategy)).fetchone()
    if row is None:
        raise Taken(name)
    return row


def ensure_team(conn, *, account_id, name: str) -> dict:
    """The team of this name, created (round robin) when nobody made it yet: an automation may name a team
    before an admin sets it up, and its threads should still wait in that team's queue."""
    name = name.strip()
    conn.execute("INSERT INTO teams (account_id, id, name) VALUES (%s, %s, %s) ON CONFLICT (account_id, name) "
                 "DO NOTHING", (account_id, uuid7(), name))
    return conn.execute(f"SELECT {_TEAM} FROM teams tm WHERE tm.account_id = %s AND tm.name = %s",
                        (account_id, name)).fetchone()


def get_team(conn, *, account_id, team_id) -> dict | None:
    row = conn.execute(f"SELECT {_TEAM} FROM teams tm WHERE tm.account_id = %s AND tm.id = %s",
                       (account_id, team_id)).fetchone()
    return None if row is None else _with_members(conn, account_id, [row])[0]


def list_teams(conn, *, account_id) -> list[dict]:
    rows = conn.execute(f"SELECT {_TEAM} FROM teams tm WHERE tm.account_id = %s ORDER BY tm.name, tm.id",
                        (account_id,)).fetchall()
    return _with_members(conn, account_id, rows)


def _with_members(conn, account_id, teams: list[dict]) -> list[dict]:
    """Each team with its members (and their load) and how many threads wait in its queue."""
    if not teams:
        return []
    ids = [t["id"] for t in teams]
    members = conn.execute(
        f"SELECT m.team_id, m.last_assigned_at, {_AGENT} FROM team_members m JOIN agents a "
        "ON a.account_id = m.account_id AND a.id = m.agent_id WHERE m.account_id = %s AND m.team_id = ANY(%s) "
        "ORDER BY a.name, a.id", (account_id, ids)).fetchall()
    queued = {r["team_id"]: r["n"] for r in conn.execute(
        "SELECT team_id, count(*) AS n FROM threads WHERE account_id = %s AND team_id = ANY(%s) "
        "AND assignee_id IS NULL AND status IN ('open', 'pending') GROUP BY team_id", (account_id, ids))}
    out = []
    for t in teams:
        mine = [m for m in members if m["team_id"] == t["id"]]
        out.append(dict(t, members=[{"agent_id": m["id"], "external_id": m["external_id"], "name": m["name"],
                                     "availability": m["availability"], "capacity": m["capacity"],
                                     "open_threads": m["open_threads"], "last_assigned_at": m["last_assigned_at"]}
                                    for m in mine],
                        queued=queued.get(t["id"], 0)))
    return out


def update_team(conn, *, account_id, team_id, changes: dict) -> dict | None:
    sets, params = [], []
    for column in ("name", "strategy"):
        if column in changes:
            sets.append(f"{column} = %s")
            params.append(changes[column].strip() if column == "name" else changes[column])
    try:
        with conn.transaction():
            row = conn.execute(f"UPDATE teams tm SET {', '.join(sets + ['updated_at = now()'])} "
                               f"WHERE tm.account_id = %s AND tm.id = %s RETURNING {_TEAM}",
                               (*params, account_id, team_id)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise Taken(changes["name"]) from None
    return None if row is None else _with_members(conn, account_id, [row])[0]


def delete_team(conn, *, account_id, team_id) -> bool:
    """Its threads keep their agent and leave the team (a queued one is routed again by its next message).
    Raises InUse when routing rules send threads to it."""
    rules = [r["id"] for r in conn.execute("SELECT id FROM routing_rules WHERE account_id = %s AND team_id = %s "
                                            "ORDER BY id", (account_id, team_id))]
    if rules:
        raise InUse(rules)
    return conn.execute("DELETE FROM teams WHERE account_id = %s AND id = %s", (account_id, team_id)).rowcount > 0


# --- agents --------------------------------------------------------------------------------------------

def create_agent(conn, *, account_id, external_id: str, name: str, availability: str = "offline",
                 languages: list[str] | None = None, capacity: int = 5) -> dict:
    made = conn.execute(
        "INSERT INTO agents (account_id, id, external_id, name, availability, languages, capacity) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, external_id) DO NOTHING RETURNING id",
        (account_id, uuid7(), external_id, name, availability, list(languages or []), capacity)).fetchone()
    if made is None:
        raise Taken(external_id)
    forget(account_id)
    return get_agent(conn, account_id=account_id, agent_id=made["id"])


def get_agent(conn, *, account_id, agent_id) -> dict | None:
    row = conn.execute(f"SELECT {_AGENT} FROM agents a WHERE a.account_id = %s AND a.id = %s",
                       (account_id, agent_id)).fetchone()
    return None if row is None else _with_teams(conn, account_id, [row])[0]


def list_agents(conn, *, account_id, availability: str | None = None, external_id: str | None = None,
                team_id=None) -> list[dict]:
    where, params = ["a.account_id = %s"], [account_id]
    if availability is not None:
        where.append("a.availability = %s"), params.append(availability)
    if external_id is not None:
        where.append("a.external_id = %s"), params.append(external_id)
    if team_id is not None:
        where.append("EXISTS (SELECT 1 FROM team_members m WHERE m.account_id = a.account_id AND m.agent_id = a.id "
                     "AND m.team_id = %s)"), params.append(team_id)
    rows = conn.execute(f"SELECT {_AGENT} FROM agents a WHERE {' AND '.join(where)} ORDER BY a.name, a.id",
                        params).fetchall()
    return _with_teams(conn, account_id, rows)


def _with_teams(conn, account_id, agents: list[dict]) -> list[dict]:
    if not agents:
        return []
    teams: dict = {}
    for r in conn.execute("SELECT m.agent_id, m.team_id FROM team_members m JOIN teams tm "
                          "ON tm.account_id = m.account_id AND tm.id = m.team_id "
                          "WHERE m.account_id = %s AND m.agent_id = ANY(%s) ORDER BY tm.name, tm.id",
                          (account_id, [a["id"] for a in agents])):
        teams.setdefault(r["agent_id"], []).append(r["team_id"])
    return [dict(a, team_ids=teams.get(a["id"], [])) for a in agents]


def update_agent(conn, *, account_id, agent_id, changes: dict) -> dict | None:
    """Change name, availability, languages or capacity; None for an unknown agent."""
    sets, params = [], []
    for column in ("name", "availability", "languages", "capacity"):
        if column in changes:
            sets.append(f"{column} = %s")
            params.append(list(changes[column]) if column == "languages" else changes[column])
    row = conn.execute(f"UPDATE agents SET {', '.join(sets + ['updated_at = now()'])} "
                       "WHERE account_id = %s AND id = %s RETURNING id", (*params, account_id, agent_id)).fetchone()
    return None if row is None else get_agent(conn, account_id=account_id, agent_id=agent_id)


def delete_agent(conn, *, account_id, agent_id) -> bool:
    """Their threads go back to their teams' queues. Raises InUse when routing rules name the agent."""
    rules = [r["id"] for r in conn.execute("SELECT id FROM routing_rules WHERE account_id = %s AND agent_id = %s "
                                            "ORDER BY id", (account_id, agent_id))]
    if rules:
        raise InUse(rules)
    done = conn.execute("DELETE FROM agents WHERE account_id = %s AND id = %s", (account_id, agent_id)).rowcount > 0
    forget(account_id)
    return done


# --- membership ----------------------------------------------------------------------------------------

def add_member(conn, *, account_id, team_id, agent_id) -> bool:
    """Put the agent in the team; True when they were not in it yet. LookupError names what is unknown."""
    if conn.execute("SELECT 1 FROM teams WHERE account_id = %s AND id = %s", (account_id, team_id)).fetchone() is None:
        raise LookupError("team")
    if conn.execute("SELECT 1 FROM agents WHERE account_id = %s AND id = %s",
                    (account_id, agent_id)).fetchone() is None:
        raise LookupError("agent")
    return conn.execute("INSERT INTO team_members (account_id, team_id, agent_id) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING", (account_id, team_id, agent_id)).rowcount > 0


def remove_member(conn, *, account_id, team_id, agent_id) -> bool:
    """Take the agent out of the team (the threads they hold stay theirs)."""
    return conn.execute("DELETE FROM team_members WHERE account_id = %s AND team_id = %s AND agent_id = %s",
                        (account_id, team_id, agent_id)).rowcount > 0


def is_member(conn, *, account_id, team_id, agent_id) -> bool:
    return conn.execute("SELECT 1 FROM team_members WHERE account_id = %s AND team_id = %s AND agent_id = %s",
                        (account_id, team_id, agent_id)).fetchone() is not None

"""REST views for agents, teams, routing rules, assigning a thread and a team's queue."""
from __future__ import annotations

from flask import request
from marshmallow import fields, validate, validates_schema, ValidationError

from gateway import agents, routing, threads
from gateway.api import paging
from gateway.api.schemas import StrictSchema
from gateway.api.views import bp
from gateway.http import api, json_body, json_object, parse_uuid
from gateway.problems import Problem

def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


_NAME = [validate.Length(min=1, max=64), _not_blank]
_LANGUAGES = fields.List(fields.String(validate=validate.Regexp(
    r"^[a-zA-Z]{2,3}([_-][a-zA-Z0-9]+)?$", error="use a language code such as 'es' or 'pt_BR'")),
    validate=validate.Length(max=20))
_CAPACITY = fields.Integer(strict=True, validate=validate.Range(
    min=0, max=1000, error="a number of concurrent open or pending threads from 0 to 1000"))


class TeamCreate(StrictSchema):
    name = fields.String(required=True, validate=_NAME)
    strategy = fields.String(load_default="round_robin", validate=validate.OneOf(agents.STRATEGIES))


class TeamUpdate(StrictSchema):
    name = fields.String(validate=_NAME)
    strategy = fields.String(validate=validate.OneOf(agents.STRATEGIES))

    @validates_schema
    def _some(self, data, **kwargs):
        if not data:
            raise ValidationError("give name or strategy")


class AgentCreate(StrictSchema):
    external_id = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank])
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank])
    availability = fields.String(load_default="offline", validate=validate.OneOf(agents.AVAILABILITY))
    languages = _LANGUAGES
    capacity = _CAPACITY


class AgentUpdate(StrictSchema):
    name = fields.String(validate=[validate.Length(min=1, max=200), _not_blank])
    availability = fields.String(validate=validate.OneOf(agents.AVAILABILITY))
    languages = _LANGUAGES
    capacity = _CAPACITY

    @validates_schema
    def _some(self, data, **kwargs):
        if not data:
            raise ValidationError("give any of name, availability, languages, capacity")


def _not_found(what: str, value) -> Problem:
    return Problem(404, "Not Found", f"no {what} with id {value} in this account",
                   slug=f"{what.replace(' ', '-')}-not-found")   # a type URI has no spaces: routing-rule-not-found


def _in_use(what: str, value, exc: agents.InUse) -> Problem:
    return Problem(409, "In Use", f"routing rule(s) {exc} send threads to {what} {value}; change or delete them "
                   "first (PUT or DELETE /v1/routing-rules/{id})", slug=f"{what}-in-use",
                   extra={"routing_rule_ids": [str(r) for r in exc.rule_ids]})


# --- teams ---------------------------------------------------------------------------------------------

@bp.get("/teams")
@api(scope="admin")
def list_teams(conn, principal):
    return {"data": agents.list_teams(conn, account_id=principal.account_id)}


@bp.post("/teams")
@api(scope="admin")
def create_team(conn, principal):
    body = json_body(TeamCreate())
    try:
        row = agents.create_team(conn, account_id=principal.account_id, name=body["name"], strategy=body["strategy"])
    except agents.Taken:
        raise Problem(409, "Name Taken", f"a team named {body['name']!r} exists already; names are unique in the "
                      "account", slug="team-name-taken") from None
    return agents.get_team(conn, account_id=principal.account_id, team_id=row["id"]), 201


def _team_or_404(conn, principal, team_id) -> dict:
    found = agents.get_team(conn, account_id=principal.account_id, team_id=parse_uuid(team_id, "team"))
    if found is None:
        raise _not_found("team", team_id)
    return found


@bp.get("/teams/<team_id>")
@api(scope="admin")
def get_team(conn, principal, team_id):
    return _team_or_404(conn, principal, team_id)


@bp.patch("/teams/<team_id>")
@api(scope="admin")
def update_team(conn, principal, team_id):
    body = json_body(TeamUpdate())
    try:
        row = agents.update_team(conn, account_id=principal.account_id, team_id=parse_uuid(team_id, "team"),
                                 changes=body)
    except agents.Taken:
        raise Problem(409, "Name Taken", f"another team is named {body['name']!r}", slug="team-name-taken") from None
    if row is None:
        raise _not_found("team", team_id)
    return row


@bp.delete("/teams/<team_id>")
@api(scope="admin")
def delete_team(conn, principal, team_id):
    try:
        done = agents.delete_team(conn, account_id=principal.account_id, team_id=parse_uuid(team_id, "team"))
    except agents.InUse as exc:
        raise _in_use("team", team_id, exc) from None
    if not done:
        raise _not_found("team", team_id)
    return "", 204


@bp.put("/teams/<team_id>/members/<agent_id>")
@api(scope="admin")
def add_team_member(conn, principal, team_id, agent_id):
    """Idempotent: 201 when the agent joined, 200 when they were in the team already. An available agent
    with room takes the team's longest waiting threads at once."""
    tid, aid = parse_uuid(team_id, "team"), parse_uuid(agent_id, "agent")
    try:
        added = agents.add_member(conn, account_id=principal.account_id, team_id=tid, agent_id=aid)
    except LookupError as exc:
        raise _not_found(str(exc), team_id if str(exc) == "team" else agent_id) from None
    given = routing.drain_agent(conn, account_id=principal.account_id, agent_id=aid, actor=principal.actor)
    return {"team_id": tid, "agent_id": aid, "added": added, "assigned_thread_ids": given}, 201 if added else 200


@bp.delete("/teams/<team_id>/members/<agent_id>")
@api(scope="admin")
def remove_team_member(conn, principal, team_id, agent_id):
    if not agents.remove_member(conn, account_id=principal.account_id, team_id=parse_uuid(team_id, "team"),
                                agent_id=parse_uuid(agent_id, "agent")):
        raise Problem(404, "Not Found", f"agent {agent_id} is not a member of team {team_id} in this account",
                      slug="not-a-member")
    return "", 204


# --- agents --------------------------------------------------------------------------------------------

@bp.get("/agents")
@api(scope="admin")
def list_agents(conn, principal):
    """Filters: availability, external_id (the CRM's id), team_id."""
    availability = request.args.get("availability")
    if availability is not None and availability not in agents.AVAILABILITY:
        raise Problem(400, "Bad Filter", f"availability is one of {', '.join(agents.AVAILABILITY)}", slug="bad-filter")
    team = request.args.get("team_id")
    return {"data": agents.list_agents(conn, account_id=principal.account_id, availability=availability,
                                       external_id=request.args.get("external_id") or None,
                                       team_id=parse_uuid(team, "team") if team else None)}


@bp.post("/agents")
@api(scope="admin")
def create_agent(conn, principal):
    body = json_body(AgentCreate())
    try:
        return agents.create_agent(conn, account_id=principal.account_id, **body), 201
    except agents.Taken:
        raise Problem(409, "Agent Exists", f"an agent with external_id {body['external_id']!r} exists already; "
                      "change it with PATCH /v1/agents/{id} (find it with GET /v1/agents?external_id=)",
                      slug="agent-exists") from None


@bp.get("/agents/<agent_id>")
@api(scope="admin")
def get_agent(conn, principal, agent_id):
    found = agents.get_agent(conn, account_id=principal.account_id, agent_id=parse_uuid(agent_id, "agent"))
    if found is None:
        raise _not_found("agent", agent_id)
    return found


@bp.patch("/agents/<agent_id>")
@api(scope="admin")
def update_agent(conn, principal, agent_id):
    """Name, availability, languages, capacity. An agent who is available afterwards (back, or with more room)
    takes the longest waiting threads of their teams' queues at once."""
    body = json_body(AgentUpdate())
    aid = parse_uuid(agent_id, "agent")
    if agents.update_agent(conn, account_id=principal.account_id, agent_id=aid, changes=body) is None:
        raise _not_found("agent", agent_id)
    given = routing.drain_agent(conn, account_id=principal.account_id, agent_id=aid, actor=principal.actor)
    return dict(agents.get_agent(conn, account_id=principal.account_id, agent_id=aid), assigned_thread_ids=given)


@bp.delete("/agents/<agent_id>")
@api(scope="admin")
def delete_agent(conn, principal, agent_id):
    """Their threads go back to their teams' queues."""
    try:
        done = agents.delete_agent(conn, account_id=principal.account_id, agent_id=parse_uuid(agent_id, "agent"))
    except agents.InUse as exc:
        raise _in_use("agent", agent_id, exc) from None
    if not done:
        raise _not_found("agent", agent_id)
    return "", 204


# --- routing rules -------------------------------------------------------------------------------------

def _valid_rule(conn, principal) -> dict:
    doc = json_object()
    found = routing.rule_problems(conn, account_id=principal.account_id, doc=doc)
    if found:
        raise Problem(422, "Invalid Routing Rule", f"{len(found)} problem(s): see errors for each one and how to "
                      "fix it", slug="invalid-routing-rule", errors=found)
    return doc


@bp.get("/routing-rules")
@api(scope="admin")
def list_routing_rules(conn, principal):
    """In the order they are tried: priority (lowest first), then creation."""
    return {"data": routing.list_rules(conn, account_id=principal.account_id)}


@bp.post("/routing-rules")
@api(scope="admin")
def create_routing_rule(conn, principal):
    return routing.create_rule(conn, account_id=principal.account_id, doc=_valid_rule(conn, principal)), 201


@bp.get("/routing-rules/<rule_id>")
@api(scope="admin")
def get_routing_rule(conn, principal, rule_id):
    row = routing.get_rule(conn, account_id=principal.account_id, rule_id=parse_uuid(rule_id, "routing rule"))
    if row is None:
        raise _not_found("routing rule", rule_id)
    return row


@bp.put("/routing-rules/<rule_id>")
@api(scope="admin")
def replace_routing_rule(conn, principal, rule_id):
    rid = parse_uuid(rule_id, "routing rule")
    row = routing.replace_rule(conn, account_id=principal.account_id, rule_id=rid, doc=_valid_rule(conn, principal))
    if row is None:
        raise _not_found("routing rule", rule_id)
    return row


@bp.delete("/routing-rules/<rule_id>")
@api(scope="admin")
def delete_routing_rule(conn, principal, rule_id):
    if not routing.delete_rule(conn, account_id=principal.account_id, rule_id=parse_uuid(rule_id, "routing rule")):
        raise _not_found("routing rule", rule_id)
    return "", 204


# --- assigning and queues ------------------------------------------------------------------------------

_ASSIGN_FIELDS = ("team_id", "agent_id", "force")


def _id_or_nobody(doc: dict, name: str, errors: list[dict], what: str):
    """None when absent, routing.NOBODY for null, else the id (a malformed one is a 422)."""
    if name not in doc:
        return None
    if doc[name] is None:
        return routing.NOBODY
    value = routing.as_uuid(doc[name])
    if value is None:
        errors.append({"pointer": f"/{name}", "detail": f"the id of {what}, or null"})
    return value


@bp.post("/threads/<thread_id>/assign")
@api(scope="messages:send")
def assign_thread(conn, principal, thread_id):
    """{team_id?, agent_id?, force?}: to an agent (409 at capacity unless force, or not in the team named),
    to a team (its strategy picks the agent, or the thread waits in its queue), {agent_id: null} back to the
    team's queue, {team_id: null, agent_id: null} out of any team. Answers the thread."""
    tid = parse_uuid(thread_id, "thread")
    doc = json_object()
    errors = [{"pointer": f"/{k}", "detail": f"unknown field; the fields are {', '.join(_ASSIGN_FIELDS)}"}
              for k in doc if k not in _ASSIGN_FIELDS]
    team_id = _id_or_nobody(doc, "team_id", errors, "a team (GET /v1/teams)")
    agent_id = _id_or_nobody(doc, "agent_id", errors, "an agent (GET /v1/agents)")
    force = doc.get("force", False)
    if not isinstance(force, bool):
        errors.append({"pointer": "/force", "detail": "true to assign an agent beyond their capacity"})
    if "team_id" not in doc and "agent_id" not in doc:
        errors.append({"pointer": "", "detail": "give team_id, agent_id or both (agent_id: null unassigns)"})
    if errors:
        raise Problem(422, "Validation Failed", f"{len(errors)} problem(s): see errors for each one and how to fix "
                      "it", slug="validation-failed", errors=errors)
    try:
        routing.assign(conn, account_id=principal.account_id, thread_id=tid, team_id=team_id, agent_id=agent_id,
                       actor=principal.actor, force=force, reason="api")
    except routing.Refused as exc:
        raise Problem(exc.status, "Not Found" if exc.status == 404 else "Assignment Refused", exc.detail,
                      slug=exc.slug, extra=exc.extra) from None
    return threads.get_thread(conn, account_id=principal.account_id, thread_id=tid)


@bp.get("/queues/<team_id>")
@api(scope="messages:read")
def team_queue(conn, principal, team_id):
    """The team's unassigned open and pending threads, longest waiting first (by the customer's last message);
    ``after`` continues from the previous page's ``next``."""
    tid = parse_uuid(team_id, "team")
    team = routing.team_row(conn, principal.account_id, tid)
    if team is None:
        raise _not_found("team", team_id)
    limit = paging.limit()
    rows = routing.queue(conn, account_id=principal.account_id, team_id=tid, limit=limit, after=paging.decode("after"))
    nxt = paging.encode(rows[-1]["waiting_since"], rows[-1]["id"]) if len(rows) == limit else None
    return {"team": team, "data": rows, "next": nxt}

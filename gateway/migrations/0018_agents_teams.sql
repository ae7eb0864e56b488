-- Agents, teams, assignment and routing (issue 10): who handles which conversation.
-- Agents are the CRM's staff (its ids and display names, not customer personal data: kept in clear).

CREATE TABLE teams (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    name        text NOT NULL,
    strategy    text NOT NULL DEFAULT 'round_robin' CHECK (strategy IN ('round_robin', 'least_busy')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, name)
);

CREATE TABLE agents (
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    external_id   text NOT NULL,                -- the CRM's id of the person
    name          text NOT NULL,
    availability  text NOT NULL DEFAULT 'offline' CHECK (availability IN ('available', 'away', 'offline')),
    languages     text[] NOT NULL DEFAULT '{}',
    capacity      integer NOT NULL DEFAULT 5 CHECK (capacity >= 0),   -- concurrent open or pending threads
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id)
);

-- last_assigned_at is the round robin's turn: the member who got a thread of this team longest ago goes next.
CREATE TABLE team_members (
    account_id        uuid NOT NULL,
    team_id           uuid NOT NULL,
    agent_id          uuid NOT NULL,
    last_assigned_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, team_id, agent_id),
    FOREIGN KEY (account_id, team_id) REFERENCES teams (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_by_agent ON team_members (account_id, agent_id);

-- A thread's team and agent. Deleting a team or an agent leaves its threads unrouted or back in the queue
-- (only that column is cleared: account_id stays).
ALTER TABLE threads ADD COLUMN team_id uuid;
ALTER TABLE threads ADD COLUMN assignee_id uuid;
ALTER TABLE threads ADD COLUMN assigned_at timestamptz;
ALTER TABLE threads ADD CONSTRAINT threads_team_fk FOREIGN KEY (account_id, team_id)
    REFERENCES teams (account_id, id) ON DELETE SET NULL (team_id);
ALTER TABLE threads ADD CONSTRAINT threads_assignee_fk FOREIGN KEY (account_id, assignee_id)
    REFERENCES agents (account_id, id) ON DELETE SET NULL (assignee_id);

-- Migration 0014 kept the team as a name (set by automations and flow hand-offs): each name becomes a team.
INSERT INTO teams (account_id, id, name)
SELECT account_id, gen_random_uuid(), team FROM (SELECT DISTINCT account_id, team FROM threads
                                                 WHERE team IS NOT NULL AND team <> '') named;
UPDATE threads t SET team_id = tm.id, assigned_at = coalesce(t.assigned_at, now())
FROM teams tm WHERE tm.account_id = t.account_id AND tm.name = t.team;
ALTER TABLE threads DROP COLUMN team;

-- A team's queue: its unassigned open or pending threads, longest waiting (oldest last customer message) first.
CREATE INDEX threads_team_queue ON threads (account_id, team_id, (coalesce(last_inbound_at, created_at)), id)
    WHERE team_id IS NOT NULL AND assignee_id IS NULL AND status IN ('open', 'pending');
-- An agent's load (open and pending threads they hold), counted against their capacity.
CREATE INDEX threads_by_assignee ON threads (account_id, assignee_id)
    WHERE assignee_id IS NOT NULL AND status IN ('open', 'pending');

-- Routing rules: the first enabled rule by priority (lowest first) whose conditions all hold decides the team
-- (and optionally the agent) of a new or reopened thread. conditions: channel_id, channel_kind, language,
-- tags, attributes, keyword (see gateway/routing.py); business configuration, not personal data.
CREATE TABLE routing_rules (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    name        text NOT NULL,
    priority    integer NOT NULL DEFAULT 100,
    enabled     boolean NOT NULL DEFAULT true,
    conditions  jsonb NOT NULL DEFAULT '{}'::jsonb,
    team_id     uuid NOT NULL,
    agent_id    uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    -- A team or agent a rule names cannot be deleted from under it (the API answers 409 naming the rules).
    FOREIGN KEY (account_id, team_id) REFERENCES teams (account_id, id),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id)
);
CREATE INDEX routing_rules_by_priority ON routing_rules (account_id, priority, id) WHERE enabled;

-- Who held the thread when it was resolved (the agent's external id), for CSAT by agent.
ALTER TABLE survey_requests ADD COLUMN assignee text;

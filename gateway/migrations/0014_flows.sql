-- Menus and small flows (issue 8): a flow is an automation of kind 'flow'; the thread remembers where its
-- customer is in it. Teams a rule or a flow can assign a thread to, by name.

ALTER TABLE automations DROP CONSTRAINT automations_kind_check;
ALTER TABLE automations ADD CONSTRAINT automations_kind_check
    CHECK (kind IN ('welcome', 'business_hours', 'keyword', 'handoff', 'flow'));

-- The step the customer was last asked (a menu or a question), of which flow, since when, and whether the
-- question was already asked again after an unexpected answer (the next miss hands off).
ALTER TABLE threads ADD COLUMN flow_automation_id uuid;
ALTER TABLE threads ADD COLUMN flow_step text;
ALTER TABLE threads ADD COLUMN flow_misses smallint NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN flow_at timestamptz;

-- The team the thread is routed to (a name; the agents-and-teams work manages teams themselves).
ALTER TABLE threads ADD COLUMN team text;

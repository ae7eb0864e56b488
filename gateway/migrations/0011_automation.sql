-- Automation rules (issue 8): per-account rules, who handles a thread, and why the customer got each answer.

-- A rule is business configuration, not personal data: stored in clear so it can be listed and validated.
CREATE TABLE automations (
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    channel_id  uuid,                          -- NULL: every channel of the account
    name        text NOT NULL,
    priority    integer NOT NULL DEFAULT 100,  -- lower acts first; the first rule that matches acts alone
    enabled     boolean NOT NULL DEFAULT true,
    kind        text NOT NULL CHECK (kind IN ('welcome', 'business_hours', 'keyword', 'handoff')),
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, channel_id) REFERENCES channels (account_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX automations_by_name ON automations (account_id, name);
CREATE INDEX automations_in_order ON automations (account_id, priority, id) WHERE enabled;

-- Account-wide automation settings (the per-thread hourly cap), beside the consent settings.
ALTER TABLE accounts ADD COLUMN automation_settings jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Who answers the thread: automated replies and the assistant stay silent once a person has it.
ALTER TABLE threads ADD COLUMN handler text NOT NULL DEFAULT 'bot' CHECK (handler IN ('bot', 'human'));
ALTER TABLE threads ADD COLUMN handed_off_at timestamptz;

-- Automated messages are marked on the row (not in the encrypted content) so the per-thread hourly cap is
-- one index range count, and a person reading the thread can tell them apart.
ALTER TABLE messages ADD COLUMN automated boolean NOT NULL DEFAULT false;

-- Why the customer got (or did not get) an automated answer. Ids and facts only, never message text or
-- profile values: the answer sent is reachable through its message id, which erasure removes with the thread.
CREATE TABLE thread_decisions (
    account_id     uuid NOT NULL,
    id             uuid NOT NULL,
    thread_id      uuid NOT NULL,
    message_id     uuid,                      -- the inbound message decided on (NULL: an API hand-off)
    automation_id  uuid,                      -- the rule that matched, if a rule did
    rule_kind      text,
    responder      text NOT NULL,             -- rules | api | (later) surveys, assistant
    outcome        text NOT NULL,             -- acted | refused | capped | skipped | handed_off | handed_back
    reason         text,                      -- the gate's rule on refusal, the guard on a skip
    actions        jsonb NOT NULL DEFAULT '[]'::jsonb,
    sent_message_ids jsonb NOT NULL DEFAULT '[]'::jsonb,   -- message ids, as strings
    -- business_hours: the instant the closed period ends (its next opening); one notice per thread and period.
    closed_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE
);
CREATE INDEX thread_decisions_by_thread ON thread_decisions (account_id, thread_id, id);
CREATE UNIQUE INDEX thread_decisions_one_notice ON thread_decisions (account_id, thread_id, automation_id, closed_until)
    WHERE closed_until IS NOT NULL;

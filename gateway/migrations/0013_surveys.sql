-- CSAT / NPS / CES surveys sent when a thread is resolved (gateway/surveys.py, gateway/thread_status.py).

-- Each transition into 'resolved' is one resolution: the counter names it, so "one survey per resolution"
-- is a unique key rather than a race between two API calls. snoozed_until is kept for the lifecycle
-- work that comes later; nothing wakes a thread yet.
ALTER TABLE threads ADD COLUMN resolution_seq integer NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN resolved_at timestamptz;
ALTER TABLE threads ADD COLUMN snoozed_until timestamptz;

-- Questions are business content, not personal data: kept in clear.
CREATE TABLE survey_settings (
    account_id    uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    enabled       boolean NOT NULL DEFAULT true,
    kind          text NOT NULL CHECK (kind IN ('csat', 'nps', 'ces')),
    questions     jsonb NOT NULL,                 -- {language: text}
    follow_up     jsonb,                          -- {language: text}, or null for no free-text question
    expiry_hours  integer NOT NULL DEFAULT 72 CHECK (expiry_hours BETWEEN 1 AND 720),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per resolution, sent or skipped (with the gate's rule as the reason), so a report can tell
-- "not answered" from "never asked".
CREATE TABLE survey_requests (
    account_id          uuid NOT NULL,
    id                  uuid NOT NULL,
    thread_id           uuid NOT NULL,
    resolution_seq      integer NOT NULL,
    contact_id          uuid NOT NULL,
    channel_id          uuid NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('csat', 'nps', 'ces')),
    language            text,
    state               text NOT NULL CHECK (state IN ('sent', 'skipped', 'answered')),
    skip_reason         text,
    message_id          uuid,                     -- no FK: erasure deletes messages before their threads
    sent_at             timestamptz,
    expires_at          timestamptz,
    answered_at         timestamptz,
    follow_up_question  text,
    follow_up_state     text NOT NULL DEFAULT 'none'
                        CHECK (follow_up_state IN ('none', 'awaiting', 'answered', 'skipped')),
    follow_up_message_id uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, thread_id, resolution_seq),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, channel_id) REFERENCES channels (account_id, id)
);
CREATE INDEX survey_requests_open ON survey_requests (account_id, thread_id, created_at DESC)
    WHERE state IN ('sent', 'answered');

-- The comment is the customer's own words: encrypted under the contact's data key, bound to its row.
CREATE TABLE survey_responses (
    account_id    uuid NOT NULL,
    id            uuid NOT NULL,
    request_id    uuid NOT NULL,
    thread_id     uuid NOT NULL,
    contact_id    uuid NOT NULL,
    channel_id    uuid NOT NULL,
    assignee      text,                            -- threads have no assignee yet; filled once they do
    kind          text NOT NULL,
    score         smallint NOT NULL,
    comment_enc   bytea,
    message_id    uuid,
    answered_at   timestamptz NOT NULL,
    commented_at  timestamptz,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, request_id),
    FOREIGN KEY (account_id, request_id) REFERENCES survey_requests (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX survey_responses_by_time ON survey_responses (account_id, answered_at DESC, id DESC);

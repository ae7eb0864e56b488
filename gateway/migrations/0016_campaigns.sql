-- Campaigns (issue 9): template (or SMS text) sends to an audience, paced, gated per recipient, resumable.
-- Progress lives here, one row per recipient: a crash, a Redis flush or a restart resumes from these rows.

CREATE TABLE campaigns (
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    name         text NOT NULL,
    purpose      text NOT NULL CHECK (purpose IN ('marketing', 'utility', 'authentication')),
    channel_id   uuid NOT NULL,
    -- message (template and parameter mapping, or text), audience, quiet hours, pace, canary: business
    -- configuration, not personal data (recipient values are read from contacts when sending).
    spec         jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'draft'
                 CHECK (state IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    state_reason text,             -- why it paused itself (or was paused), cancelled or completed
    waiting      text,             -- what a running campaign waits for now (messaging limit, quiet hours, canary)
    start_at     timestamptz,
    audience_ready boolean NOT NULL DEFAULT false,   -- recipients materialised
    duplicates   integer NOT NULL DEFAULT 0,         -- audience entries that named a contact already in it
    canary_done  boolean NOT NULL DEFAULT false,
    pace_from    timestamptz,      -- the pacing epoch: sends since then stay under pace × elapsed
    pace_fed     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, channel_id) REFERENCES channels (account_id, id)
);
CREATE UNIQUE INDEX campaigns_by_name ON campaigns (account_id, name);
CREATE INDEX campaigns_active ON campaigns (state, start_at) WHERE state IN ('scheduled', 'running');

CREATE TABLE campaign_recipients (
    account_id   uuid NOT NULL,
    campaign_id  uuid NOT NULL,
    contact_id   uuid NOT NULL,
    seq          bigint GENERATED ALWAYS AS IDENTITY,   -- feed order
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'skipped', 'queued')),
    skip_reason  text,
    defer_until  timestamptz,      -- quiet hours in the recipient's time zone: not before this
    message_id   uuid,
    queued_at    timestamptz,
    replied_at   timestamptz,
    PRIMARY KEY (account_id, campaign_id, contact_id),
    FOREIGN KEY (account_id, campaign_id) REFERENCES campaigns (account_id, id) ON DELETE CASCADE,
    -- Erasing a contact takes its campaign rows with it.
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_recipients_pending ON campaign_recipients (account_id, campaign_id, seq) WHERE state = 'pending';
CREATE INDEX campaign_recipients_queued ON campaign_recipients (account_id, campaign_id, queued_at) WHERE state = 'queued';
-- A customer's reply is credited to the campaign messages they got (one probe per inbound batch).
CREATE INDEX campaign_recipients_awaiting_reply ON campaign_recipients (account_id, contact_id)
    WHERE state = 'queued' AND replied_at IS NULL;

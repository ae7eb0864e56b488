-- Notes, tags, typed attributes, contact search and the 360° contact timeline (issue 10).

-- Internal notes on a thread: never sent, never a message. The body is encrypted under the data key of the
-- thread's contact (contact_id: the thread's contact when written, whose key it is), so erasing the contact
-- shreds it, and the rows go with the thread by cascade. author: the agent's external id the caller named,
-- else the caller (api_key:<id>); actor: always the API key that wrote it.
CREATE TABLE thread_notes (
    account_id  uuid NOT NULL,
    id          uuid NOT NULL,
    thread_id   uuid NOT NULL,
    contact_id  uuid NOT NULL,
    author      text NOT NULL,
    actor       text NOT NULL,
    body_enc    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX thread_notes_by_thread ON thread_notes (account_id, thread_id, created_at, id);
CREATE INDEX thread_notes_by_contact ON thread_notes (account_id, contact_id);

-- Tags are the account's own labels ("vip", "mayorista"), business vocabulary rather than personal data, so
-- they are kept in clear and indexed: lists filter by them. They used to live in the encrypted profile
-- under "tags"; a profile that still holds some is moved here on its next write, and read as tags meanwhile
-- (gateway/contact_tags.py).
CREATE TABLE contact_tags (
    account_id  uuid NOT NULL,
    contact_id  uuid NOT NULL,
    tag         text NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, contact_id, tag),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_tags_by_tag ON contact_tags (account_id, tag, contact_id);

CREATE TABLE thread_tags (
    account_id  uuid NOT NULL,
    thread_id   uuid NOT NULL,
    tag         text NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, thread_id, tag),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE
);
CREATE INDEX thread_tags_by_tag ON thread_tags (account_id, tag, thread_id);

-- Typed custom attributes, defined per account. Values stay in the encrypted profile; a definition only
-- says what type a value must have when the API writes it, and whether lists may filter on it.
CREATE TABLE attribute_definitions (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    type        text NOT NULL CHECK (type IN ('string', 'number', 'date', 'boolean', 'list')),
    label       text,
    filterable  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, name)
);

-- A filterable attribute's value per contact as a keyed blind index of its normalised form (one row per
-- element of a list), so GET /v1/contacts?attribute.<name>=<value> is an index look-up, never a scan that
-- decrypts profiles. Dropping the definition drops its rows; erasing the contact drops its rows.
CREATE TABLE contact_attribute_index (
    account_id  uuid NOT NULL,
    contact_id  uuid NOT NULL,
    name        text NOT NULL,
    value_bidx  bytea NOT NULL,
    PRIMARY KEY (account_id, contact_id, name, value_bidx),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, name) REFERENCES attribute_definitions (account_id, name) ON DELETE CASCADE
);
CREATE INDEX contact_attribute_index_lookup ON contact_attribute_index (account_id, name, value_bidx);

-- The timeline reads each source "after the cursor, LIMIT page" per thread or per contact; these indexes
-- serve the sources that had none in that order (messages, thread events and notes have theirs).
CREATE INDEX survey_responses_by_thread_time ON survey_responses (account_id, thread_id, answered_at, id);
CREATE INDEX consent_events_by_contact_time ON consent_events (account_id, contact_id, occurred_at, id);

-- When a campaign recipient was decided (queued or skipped): the campaign item's time on the timeline.
-- Rows decided before this column existed take their queued time, else the campaign's start.
ALTER TABLE campaign_recipients ADD COLUMN decided_at timestamptz;
UPDATE campaign_recipients r SET decided_at = coalesce(r.queued_at, c.started_at, c.created_at)
    FROM campaigns c WHERE c.account_id = r.account_id AND c.id = r.campaign_id AND r.state <> 'pending';
CREATE INDEX campaign_recipients_by_contact ON campaign_recipients (account_id, contact_id, decided_at, campaign_id)
    WHERE decided_at IS NOT NULL;

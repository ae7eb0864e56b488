-- Inbound: channels that route and verify, identities without a phone number,
-- merged contacts, threads one per contact and channel, structured messages
-- with status history, statuses that arrive before their message, media,
-- and provider notices.

-- WhatsApp business-scoped user ids (BSUID) reach users who share no number.
ALTER TABLE contact_identities DROP CONSTRAINT contact_identities_kind_check;
ALTER TABLE contact_identities ADD CONSTRAINT contact_identities_kind_check
    CHECK (kind IN ('phone', 'bsuid', 'psid', 'igsid', 'email'));

-- A merged contact keeps its rows (and its data key: nothing is re-encrypted),
-- points at the survivor, and reads resolve through it; unmerging clears it.
ALTER TABLE contacts ADD COLUMN merged_into uuid;
CREATE INDEX contacts_merged_into ON contacts (account_id, merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE contact_merges (
    account_id   uuid NOT NULL,
    id           uuid NOT NULL,
    survivor_id  uuid NOT NULL,
    merged_id    uuid NOT NULL,
    actor        text NOT NULL,
    reason       text NOT NULL,
    merged_at    timestamptz NOT NULL DEFAULT now(),
    unmerged_at  timestamptz,
    unmerged_by  text,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, survivor_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, merged_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_merges_by_merged ON contact_merges (account_id, merged_id);

-- group_id: the WhatsApp Business Account id, which template and account
-- updates are addressed to. The verify token is kept as a hash so the GET
-- handshake can find its channel without decrypting every channel's secrets.
ALTER TABLE channels ADD COLUMN group_id text;
ALTER TABLE channels ADD COLUMN verify_token_hash bytea;
ALTER TABLE channels ADD COLUMN rejected_signatures bigint NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN last_rejected_at timestamptz;
ALTER TABLE channels ADD COLUMN health jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE channels ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX channels_by_group_id ON channels (kind, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX channels_by_verify_token ON channels (kind, verify_token_hash) WHERE verify_token_hash IS NOT NULL;

DROP INDEX threads_by_contact;
CREATE UNIQUE INDEX threads_one_per_contact_channel ON threads (account_id, contact_id, channel_id);
ALTER TABLE threads ADD COLUMN last_outbound_at timestamptz;
ALTER TABLE threads ADD COLUMN reopened_at timestamptz;

-- content_enc: the structured content (JSON) under the contact's key;
-- provider_id_enc: the provider's message id, which can embed the phone number.
-- occurred_at is the provider's time of the message: threads read in that order.
ALTER TABLE messages ADD COLUMN content_enc bytea;
ALTER TABLE messages ADD COLUMN provider_id_enc bytea;
ALTER TABLE messages ADD COLUMN reply_to_id uuid;
ALTER TABLE messages ADD COLUMN reply_to_bidx bytea;   -- resolved to reply_to_id when the target arrives late
ALTER TABLE messages ADD COLUMN occurred_at timestamptz NOT NULL DEFAULT now();
DROP INDEX messages_by_thread;
CREATE INDEX messages_by_thread ON messages (account_id, thread_id, occurred_at, id);
CREATE INDEX messages_awaiting_reply_target ON messages (account_id, channel_id, reply_to_bidx)
    WHERE reply_to_bidx IS NOT NULL AND reply_to_id IS NULL;
CREATE INDEX messages_outbound_by_thread ON messages (account_id, thread_id, occurred_at)
    WHERE direction = 'outbound';

-- One row per distinct status a provider reported, kept even when it does not
-- move the message (history), once however often it is redelivered.
ALTER TABLE message_events ADD COLUMN occurred_at timestamptz;
CREATE UNIQUE INDEX message_events_once ON message_events (account_id, message_id, status, (coalesce(provider_ts, '')));

-- A status whose message is not known yet (webhooks arrive out of order, or
-- before the send worker recorded the provider id): applied when it appears.
CREATE TABLE pending_statuses (
    account_id        uuid NOT NULL,
    id                uuid NOT NULL,
    channel_id        uuid NOT NULL,
    provider_id_bidx  bytea NOT NULL,
    status            text NOT NULL,
    error_code        text,
    error_reason      text,
    detail            jsonb,
    provider_ts       text,
    occurred_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE INDEX pending_statuses_by_provider_id ON pending_statuses (account_id, channel_id, provider_id_bidx);

-- Inbound media: announced by a message, downloaded by a worker, stored under
-- the contact's key. source_enc holds the provider's media id / URL / hash.
CREATE TABLE media (
    account_id      uuid NOT NULL,
    id              uuid NOT NULL,
    message_id      uuid NOT NULL,
    contact_id      uuid NOT NULL,
    channel_id      uuid NOT NULL,
    position        smallint NOT NULL DEFAULT 0,
    kind            text NOT NULL,
    mime_type       text,
    source_enc      bytea NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    size_bytes      bigint,
    sha256          text,
    content_enc     bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    stored_at       timestamptz,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages (account_id, id) ON DELETE CASCADE
);
CREATE INDEX media_by_message ON media (account_id, message_id, position);
CREATE INDEX media_pending ON media (next_attempt_at) WHERE state = 'pending';

-- Provider notifications that are not messages (template, quality, account,
-- preference and call updates), kept for the part of the gateway that owns
-- the topic. detail is encrypted, under the contact's key when it names one
-- (so erasing the contact shreds it), else under the account's.
CREATE TABLE notices (
    account_id   uuid NOT NULL,
    id           uuid NOT NULL,
    channel_id   uuid NOT NULL,
    topic        text NOT NULL,
    data_key_id  uuid NOT NULL,
    detail_enc   bytea NOT NULL,
    contact_id   uuid,
    occurred_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    handled_at   timestamptz,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, data_key_id) REFERENCES data_keys (account_id, id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX notices_by_topic ON notices (account_id, topic, created_at);

-- Parsed but not fully understood: stored, acknowledged, and listed for review.
ALTER TABLE inbound_events ADD COLUMN review_reasons text[];
CREATE INDEX inbound_events_review ON inbound_events (account_id, received_at) WHERE review_reasons IS NOT NULL;

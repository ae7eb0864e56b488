-- Foundation schema. Every table of tenant data carries account_id and leads
-- its primary key and unique constraints with it, so the data can later be
-- distributed by account (Citus) without rewriting queries. Columns ending in
-- _enc hold AES-GCM ciphertexts bound to their row; _bidx columns hold keyed
-- blind indexes. Nothing personal is stored in clear.

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys are looked up by their public prefix before the account is known,
-- hence the global unique prefix (a reference table under Citus).
CREATE TABLE api_keys (
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    prefix       text NOT NULL UNIQUE,
    secret_hash  bytea NOT NULL,
    name         text NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (account_id, id)
);

-- Data keys: one per contact (purpose 'contact') and per account for data not
-- yet tied to a contact (purpose 'account'). wrapped is NULL once shredded.
CREATE TABLE data_keys (
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('contact', 'account', 'channel')),
    master_kid  text,
    wrapped     bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    rewrapped_at timestamptz,
    shredded_at timestamptz,
    PRIMARY KEY (account_id, id),
    CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL))
);
CREATE INDEX data_keys_by_master ON data_keys (master_kid) WHERE wrapped IS NOT NULL;
CREATE UNIQUE INDEX data_keys_one_account_key ON data_keys (account_id) WHERE purpose = 'account';

-- A channel is one business number or page. external_id (phone_number_id,
-- page id, Twilio number) is the business's own identifier, kept in clear to
-- route webhooks; credentials are encrypted.
CREATE TABLE channels (
    account_id      uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id              uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('whatsapp', 'messenger', 'instagram', 'twilio', 'sandbox')),
    name            text NOT NULL,
    external_id     text NOT NULL,
    data_key_id     uuid NOT NULL,
    credentials_enc bytea,
    settings        jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, data_key_id) REFERENCES data_keys (account_id, id)
);
CREATE UNIQUE INDEX channels_by_external_id ON channels (kind, external_id);

CREATE TABLE contacts (
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    data_key_id  uuid NOT NULL,
    name_enc     bytea,
    profile_enc  bytea,
    language     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, data_key_id) REFERENCES data_keys (account_id, id)
);
CREATE INDEX contacts_by_created ON contacts (account_id, created_at DESC, id DESC);

-- How a contact is reached on a channel kind: phone (E.164) for WhatsApp and
-- SMS, page-scoped id for Messenger, Instagram-scoped id for Instagram.
CREATE TABLE contact_identities (
    account_id   uuid NOT NULL,
    id           uuid NOT NULL,
    contact_id   uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('phone', 'psid', 'igsid', 'email')),
    address_bidx bytea NOT NULL,
    address_enc  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, kind, address_bidx),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_identities_by_contact ON contact_identities (account_id, contact_id);

-- Append-only: the current consent state is derived from the latest event.
CREATE TABLE consent_events (
    account_id   uuid NOT NULL,
    id           uuid NOT NULL,
    contact_id   uuid NOT NULL,
    channel_kind text NOT NULL,
    purpose      text NOT NULL,
    action       text NOT NULL CHECK (action IN ('granted', 'withdrawn')),
    source       text NOT NULL,
    proof_enc    bytea,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
CREATE INDEX consent_events_current ON consent_events (account_id, contact_id, channel_kind, purpose, occurred_at DESC);

CREATE TABLE threads (
    account_id       uuid NOT NULL,
    id               uuid NOT NULL,
    contact_id       uuid NOT NULL,
    channel_id       uuid NOT NULL,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'snoozed', 'resolved')),
    last_inbound_at  timestamptz,
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, channel_id) REFERENCES channels (account_id, id)
);
CREATE INDEX threads_by_activity ON threads (account_id, last_activity_at DESC, id DESC);
CREATE INDEX threads_by_contact ON threads (account_id, contact_id, channel_id);

-- status_rank orders statuses so an out-of-order webhook never moves a
-- message backwards (read never becomes delivered).
CREATE TABLE messages (
    account_id        uuid NOT NULL,
    id                uuid NOT NULL,
    thread_id         uuid NOT NULL,
    contact_id        uuid NOT NULL,
    channel_id        uuid NOT NULL,
    direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind              text NOT NULL DEFAULT 'text',
    body_enc          bytea,
    provider_id_bidx  bytea,
    status            text NOT NULL,
    status_rank       smallint NOT NULL DEFAULT 0,
    error_code        text,
    error_reason      text,
    idempotency_key   text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_by_provider_id ON messages (account_id, channel_id, provider_id_bidx)
    WHERE provider_id_bidx IS NOT NULL;
CREATE INDEX messages_by_thread ON messages (account_id, thread_id, created_at, id);
CREATE INDEX messages_pending ON messages (created_at) WHERE status IN ('queued', 'sending');
CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE message_events (
    account_id   uuid NOT NULL,
    id           uuid NOT NULL,
    message_id   uuid NOT NULL,
    status       text NOT NULL,
    detail       jsonb,
    provider_ts  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages (account_id, id) ON DELETE CASCADE
);
CREATE INDEX message_events_by_message ON message_events (account_id, message_id, created_at);

-- Raw provider events, stored (encrypted) before the webhook is acknowledged.
-- processed_at NULL means a worker still owes it; the sweeper re-enqueues those.
CREATE TABLE inbound_events (
    account_id    uuid NOT NULL,
    id            uuid NOT NULL,
    channel_id    uuid NOT NULL,
    provider      text NOT NULL,
    dedupe_key    text NOT NULL,
    data_key_id   uuid NOT NULL,
    raw_enc       bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, provider, dedupe_key),
    FOREIGN KEY (account_id, data_key_id) REFERENCES data_keys (account_id, id)
);
CREATE INDEX inbound_events_pending ON inbound_events (received_at) WHERE processed_at IS NULL;

-- Who did what, without personal data: targets are ids, details hold no PII.
CREATE TABLE audit_log (
    account_id  uuid,
    id          uuid NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    target_type text,
    target_id   text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
);
CREATE INDEX audit_log_by_account ON audit_log (account_id, at DESC);

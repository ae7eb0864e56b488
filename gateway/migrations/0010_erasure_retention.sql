-- Erasure (GDPR Art. 17) and retention (Art. 5(1)(e)).

-- An erased contact leaves only this: which contact id of which account, and when. Nothing that could
-- identify the person (not even a hash of the number: a phone number's hash is reversed by enumeration).
-- It answers 410 to a second erasure and proves to an auditor that the request was carried out.
CREATE TABLE contact_erasures (
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    contact_id  uuid NOT NULL,
    erased_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, contact_id)
);

-- Append-only domain events for integrations (contact.erased, ...). Only ids and facts, never personal
-- data: a CRM that holds a copy of the contact learns from here that it must erase it too. Delivery
-- (signed webhooks, a change feed) is a later issue's; until then this table is the outbox it will read.
CREATE TABLE events (
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    type        text NOT NULL,
    subject_id  uuid,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);

-- Raw webhooks are stored before anyone knows whose they are (under the account's key), so applying one
-- records which contacts it concerned; erasure then wipes those bodies. The row itself stays, without its
-- body, so a provider's redelivery of an erased contact's old webhook is still a duplicate and cannot bring
-- the old message back into a new contact.
CREATE TABLE inbound_event_contacts (
    account_id  uuid NOT NULL,
    contact_id  uuid NOT NULL,
    event_id    uuid NOT NULL,
    PRIMARY KEY (account_id, contact_id, event_id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, event_id) REFERENCES inbound_events (account_id, id) ON DELETE CASCADE
);
CREATE INDEX inbound_event_contacts_by_event ON inbound_event_contacts (account_id, event_id);
ALTER TABLE inbound_events ALTER COLUMN raw_enc DROP NOT NULL;
ALTER TABLE inbound_events ADD COLUMN raw_erased_at timestamptz;
ALTER TABLE inbound_events ADD CONSTRAINT inbound_events_raw_or_erased
    CHECK (raw_enc IS NOT NULL OR raw_erased_at IS NOT NULL);

-- Retention per account, in days; NULL keeps forever. Message content is kept until the business sets a
-- period (deleting a history nobody asked to delete would be a surprise on upgrade); raw webhooks, which
-- only serve reprocessing and debugging once applied, go after 30 days unless the account says otherwise.
-- At least 7 days for raw events: Meta redelivers for up to a week, and the stored row is what makes a
-- redelivery a duplicate.
ALTER TABLE accounts ADD COLUMN retention_message_days integer
    CHECK (retention_message_days IS NULL OR retention_message_days >= 1);
ALTER TABLE accounts ADD COLUMN retention_raw_event_days integer DEFAULT 30
    CHECK (retention_raw_event_days IS NULL OR retention_raw_event_days >= 7);

-- Expired message content is wiped, not the message: direction, kind, status, times and channel stay
-- for reports and billing; the text, structured content and media bytes go.
ALTER TABLE messages ADD COLUMN content_erased_at timestamptz;
-- The retention job walks each account's oldest unwiped messages; wiped rows leave this index, so every
-- batch starts at its first row instead of rereading what earlier batches wiped.
CREATE INDEX messages_content_by_age ON messages (account_id, occurred_at, id) WHERE content_erased_at IS NULL;
-- Processed raw events by age (unprocessed ones are never deleted: a worker still owes them).
CREATE INDEX inbound_events_processed_by_age ON inbound_events (account_id, received_at, id)
    WHERE processed_at IS NOT NULL;
-- A status waiting for its message names no one but the provider's message id; applying its webhook
-- records whose it is, so erasing that contact deletes it too.
ALTER TABLE pending_statuses ADD COLUMN contact_id uuid;
CREATE INDEX pending_statuses_by_contact ON pending_statuses (account_id, contact_id) WHERE contact_id IS NOT NULL;
-- Pending statuses whose message never appears (it was erased, or a late status of a deleted one) go with
-- age too; they hold a provider id's blind index and nothing else worth keeping.
CREATE INDEX pending_statuses_by_age ON pending_statuses (account_id, created_at);

-- Erasure deletes through foreign keys that had no index on the referencing side: without these each
-- deleted contact scans the whole table.
CREATE INDEX contact_merges_by_survivor ON contact_merges (account_id, survivor_id);
CREATE INDEX notices_by_contact ON notices (account_id, contact_id) WHERE contact_id IS NOT NULL;

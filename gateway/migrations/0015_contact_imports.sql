-- Contact imports from CSV (gateway/contact_import.py): the import itself and the contacts it reached, which
-- is the audience a campaign can name by import id.

-- Counts and column names are facts about the file; the file name and the error list (it quotes the bad
-- cells) may name people, so they are encrypted under the account's data key. 'running' while batches are
-- being committed; 'failed' when the import stopped midway (the rows committed so far stay, and running the
-- same file again completes it without duplicates: phones are matched by their blind index).
CREATE TABLE contact_imports (
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id              uuid NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    filename_enc    bytea,
    default_region  text,
    columns         text[] NOT NULL DEFAULT '{}',   -- the non-reserved columns, in file order
    rows            integer NOT NULL DEFAULT 0,
    imported        integer NOT NULL DEFAULT 0,
    created         integer NOT NULL DEFAULT 0,
    updated         integer NOT NULL DEFAULT 0,
    duplicates      integer NOT NULL DEFAULT 0,
    skipped         integer NOT NULL DEFAULT 0,
    errors_enc      bytea,
    actor           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX contact_imports_by_created ON contact_imports (account_id, created_at DESC, id DESC);

-- One row per contact of the import (duplicates in the file collapse onto it; line is where it first
-- appeared). values_enc holds the row's own columns, under the contact's data key, for campaign parameters
-- taken "from CSV columns": erasing the contact shreds them with the key and deletes the row by cascade.
-- No foreign key to contact_imports: a check per row is a tenth of an import's time, imports are never
-- deleted on their own, and an account's deletion takes these rows through its contacts.
CREATE TABLE contact_import_rows (
    account_id  uuid NOT NULL,
    import_id   uuid NOT NULL,
    contact_id  uuid NOT NULL,
    line        integer NOT NULL,
    values_enc  bytea,
    PRIMARY KEY (account_id, import_id, contact_id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE
);
-- Erasure deletes through the contact foreign key: without this each erased contact scans the table.
CREATE INDEX contact_import_rows_by_contact ON contact_import_rows (account_id, contact_id);

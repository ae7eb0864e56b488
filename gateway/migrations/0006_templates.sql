-- WhatsApp message templates as Meta holds them, per account and WhatsApp Business Account (WABA).
-- The definition is Meta's own JSON (components, examples); status and quality move with Meta's
-- webhooks, so a template paused at Meta is refused by the send gate at once.
CREATE TABLE templates (
    account_id      uuid NOT NULL REFERENCES accounts (id),
    id              uuid NOT NULL,
    waba_id         text NOT NULL,
    name            text NOT NULL,
    language        text NOT NULL,
    category        text,
    status          text NOT NULL,
    status_reason   text,
    quality_score   text,
    meta_id         text,
    definition      jsonb NOT NULL,
    synced_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX templates_one_per_language ON templates (account_id, waba_id, name, language);
CREATE INDEX templates_by_meta_id ON templates (account_id, meta_id) WHERE meta_id IS NOT NULL;

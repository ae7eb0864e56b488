-- The consent ledger (gateway/consent.py). consent_events (0001) is the ledger itself: one row per
-- grant or withdrawal, proof encrypted under the contact's data key.

-- A regulator asks "what did this person agree to, and when": an event that can be edited proves
-- nothing, so the database refuses it whoever asks. Deletion stays possible because erasure
-- (Art. 17) deletes the contact and its events go with it (ON DELETE CASCADE).
CREATE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_events is append-only: record a new granted or withdrawn event instead of changing one'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_append_only();

-- Per-account consent settings: extra purposes, keyword lists and confirmation texts per language.
-- Only what the account overrides is stored; the defaults live in code (gateway/keywords.py).
ALTER TABLE accounts ADD COLUMN consent_settings jsonb NOT NULL DEFAULT '{}'::jsonb;

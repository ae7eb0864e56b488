-- Audit log reads (GET /v1/audit): newest first with an (at, id) cursor, per account. Every API read of
-- personal data now writes a row, so the log grows with traffic: the cursor walks an index in its own
-- order instead of sorting, and "who touched this contact" is answered by the target index (ids are
-- unique across target types, so the type need not lead it).
DROP INDEX IF EXISTS audit_log_by_account;
CREATE INDEX audit_log_by_account ON audit_log (account_id, at DESC, id DESC);
CREATE INDEX audit_log_by_target ON audit_log (account_id, target_id, at DESC, id DESC)
    WHERE target_id IS NOT NULL;

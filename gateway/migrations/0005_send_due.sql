-- The send worker claims an account's oldest due messages many times a second: without this index
-- each claim read every outbound message the account ever sent, and sorted what was due.
CREATE INDEX messages_due_by_account ON messages (account_id, created_at)
    WHERE direction = 'outbound' AND status IN ('queued', 'retry_scheduled');

-- The inbox (issue 10): unread customer messages per thread (kept by the statement that records a message,
-- reset when an agent reads the thread), and the orders an inbox lists threads in.
ALTER TABLE threads ADD COLUMN unread_count integer NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN agent_read_at timestamptz;
CREATE INDEX threads_by_status_activity ON threads (account_id, status, last_activity_at DESC, id DESC);
-- "Waiting longest first": threads whose customer spoke last, by when.
CREATE INDEX threads_waiting ON threads (account_id, last_inbound_at, id)
    WHERE last_inbound_at IS NOT NULL AND status IN ('open', 'pending');

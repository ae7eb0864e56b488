-- Outbound: the send worker's state machine, idempotent requests, paused channels.

-- queued -> sending -> sent | retry_scheduled | failed; 'sending' left behind by a crash is
-- reconciled by the sweeper before anything is sent again.
ALTER TABLE messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE messages ADD COLUMN send_started_at timestamptz;
ALTER TABLE messages ADD COLUMN sent_at timestamptz;
ALTER TABLE messages ADD COLUMN last_error text;
ALTER TABLE messages ADD COLUMN purpose text;
ALTER TABLE messages ADD COLUMN request_hash bytea;   -- Idempotency-Key: same key, same body
DROP INDEX messages_pending;
CREATE INDEX messages_to_send ON messages (next_attempt_at, created_at)
    WHERE status IN ('queued', 'sending', 'retry_scheduled');
CREATE INDEX messages_failed ON messages (account_id, updated_at DESC) WHERE status = 'failed';

-- An auth error pauses the channel (and says why) instead of burning the queue.
ALTER TABLE channels DROP CONSTRAINT channels_status_check;
ALTER TABLE channels ADD CONSTRAINT channels_status_check CHECK (status IN ('active', 'paused', 'disabled'));
ALTER TABLE channels ADD COLUMN paused_reason text;

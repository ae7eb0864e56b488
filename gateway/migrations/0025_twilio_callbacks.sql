-- Twilio-shaped status callbacks (the /twilio facade). A 'twilio' endpoint is made by the facade itself, one per
-- account, API key and StatusCallback URL; its secret is that API key's text (the integration's "auth token",
-- which it validates X-Twilio-Signature with). It gets the events of the messages linked to it in
-- message_callbacks only - the sends that named its URL - as Twilio sends status callbacks per message.
ALTER TABLE webhook_endpoints DROP CONSTRAINT IF EXISTS webhook_endpoints_format_check;
ALTER TABLE webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_format_check CHECK (format IN ('standard', 'meta', 'twilio')),
    ADD COLUMN api_key_id uuid,
    ADD CONSTRAINT webhook_endpoints_api_key_twilio CHECK (api_key_id IS NULL OR format = 'twilio'),
    ADD CONSTRAINT webhook_endpoints_api_key_fk FOREIGN KEY (account_id, api_key_id)
        REFERENCES api_keys (account_id, id) ON DELETE CASCADE;
CREATE UNIQUE INDEX webhook_endpoints_twilio_url ON webhook_endpoints (account_id, api_key_id, url)
    WHERE format = 'twilio';

CREATE TABLE message_callbacks (
    account_id  uuid NOT NULL,
    message_id  uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, message_id, endpoint_id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, endpoint_id) REFERENCES webhook_endpoints (account_id, id) ON DELETE CASCADE
);
CREATE INDEX message_callbacks_endpoint ON message_callbacks (account_id, endpoint_id);

-- Webhook endpoint formats. 'standard': the gateway's own event bodies, signed as Standard Webhooks say.
-- 'meta': WhatsApp messages and statuses in Meta's own webhook format, signed with X-Hub-Signature-256, for an
-- integration written against the Cloud API (the /graph facade); only WhatsApp channels' events reach it, and
-- only those of channel_ids when set (NULL: every WhatsApp channel of the account, present and future).
ALTER TABLE webhook_endpoints
    ADD COLUMN format text NOT NULL DEFAULT 'standard' CHECK (format IN ('standard', 'meta')),
    ADD COLUMN channel_ids uuid[],
    ADD CONSTRAINT webhook_endpoints_channel_ids_meta CHECK (channel_ids IS NULL OR format = 'meta');

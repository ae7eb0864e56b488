-- The change feed (GET /v1/events): a cursor that never skips an event. Event ids are made when the event is
-- written, but transactions commit in another order, so a reader paging by id could pass an event whose
-- transaction was still open. Each event keeps the id of the transaction that wrote it; the feed only shows
-- events of transactions older than every transaction still running, in (transaction, sequence) order, so
-- whatever appears later sorts after any cursor handed out.
ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX events_feed ON events (account_id, xid, seq);
CREATE INDEX events_by_age ON events (created_at);

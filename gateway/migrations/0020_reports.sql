-- Contact-center reports (issue 10, gateway/reports/): the account's report targets and the indexes the
-- report queries walk. Nothing here depends on the agents-and-teams migration (0018).

-- The first-contact-resolution window and the service-level target; NULL: the defaults (7 days, 60 s).
-- A report's query parameters override them.
ALTER TABLE accounts ADD COLUMN report_fcr_days integer CHECK (report_fcr_days BETWEEN 1 AND 90);
ALTER TABLE accounts ADD COLUMN report_sla_seconds integer CHECK (report_sla_seconds BETWEEN 1 AND 604800);

-- Messages of an account by their time: inbound volume, replies and the out-of-hours shares of a date range.
CREATE INDEX messages_by_account_time ON messages (account_id, occurred_at);

-- Resolutions, which bound conversations: by time (the range) and by thread (the previous and next one).
CREATE INDEX thread_events_resolved_by_time ON thread_events (account_id, created_at) INCLUDE (thread_id)
    WHERE kind = 'status' AND detail ->> 'to' = 'resolved';
CREATE INDEX thread_events_resolved_by_thread ON thread_events (account_id, thread_id, created_at)
    WHERE kind = 'status' AND detail ->> 'to' = 'resolved';

-- Reopenings (status rows out of 'resolved') and hand-offs to a person, looked up per thread and time range.
CREATE INDEX thread_events_reopened_by_thread ON thread_events (account_id, thread_id, created_at) INCLUDE (actor)
    WHERE kind = 'status' AND detail ->> 'from' = 'resolved';
CREATE INDEX thread_events_handoffs_by_thread ON thread_events (account_id, thread_id, created_at)
    WHERE kind = 'handler' AND detail ->> 'to' = 'human';
-- Without these the planner guesses how many status rows go into 'resolved' (a few hundred for tens of
-- thousands) and walks threads and contacts row by row instead of hashing them.
CREATE STATISTICS thread_events_kind_status (mcv) ON kind, (detail ->> 'to'), (detail ->> 'from') FROM thread_events;

-- Survey answers (inbound messages that are not a customer coming back) are looked up per thread through
-- survey_responses_by_thread_time (migration 0019).

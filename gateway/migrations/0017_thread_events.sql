-- What happened to a thread besides its messages (issue 10): status changes, assignments, hand-offs, who did
-- them and when. Facts and ids only, never message text: the 360° timeline and the reports read it.
CREATE TABLE thread_events (
    account_id  uuid NOT NULL,
    id          uuid NOT NULL,
    thread_id   uuid NOT NULL,
    kind        text NOT NULL,          -- status | assigned | unassigned | handler | ...
    actor       text NOT NULL,          -- api_key:<id>, agent:<id>, automation, routing, customer, gateway
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, id) ON DELETE CASCADE
);
CREATE INDEX thread_events_by_thread ON thread_events (account_id, thread_id, created_at, id);
CREATE INDEX thread_events_by_kind ON thread_events (account_id, kind, created_at);

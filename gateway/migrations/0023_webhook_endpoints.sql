-- Signed event webhooks to CRMs. The events table is the outbox (written in the changing transaction); a
-- relay copies each new event into one delivery per subscribed endpoint, in the feed's (xid, seq) order, and
-- remembers how far it got in the same transaction, so an event is fanned out exactly once.
CREATE TABLE webhook_endpoints (
    account_id          uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id                  uuid NOT NULL,
    url                 text NOT NULL,
    description         text,
    event_types         text[] NOT NULL,
    scopes              text[] NOT NULL,          -- of the key that made it: what its payloads may carry
    include_content     boolean NOT NULL DEFAULT true,
    enabled             boolean NOT NULL DEFAULT true,
    disabled_reason     text,
    disabled_at         timestamptz,
    data_key_id         uuid NOT NULL,
    secret_enc          bytea NOT NULL,
    previous_secret_enc bytea,
    previous_secret_until timestamptz,
    failing_since       timestamptz,              -- first failure since the last success
    last_success_at     timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (account_id) WHERE enabled;

-- One row per (endpoint, event) to deliver, and per replay. ``lane`` is what must arrive in order (the
-- thread, else the subject); ``seq`` is the order within it. A delivery waits while an earlier one of its
-- lane is in flight or waiting to be retried; a dead letter no longer holds its lane up.
CREATE TABLE webhook_deliveries (
    account_id      uuid NOT NULL,
    id              uuid NOT NULL,
    endpoint_id     uuid NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    lane            uuid NOT NULL,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivering', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_status_code int,
    last_latency_ms int,
    last_error      text,
    replay_of       uuid,
    committed_at    timestamptz,                  -- when the event's transaction was seen committed
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, endpoint_id) REFERENCES webhook_endpoints (account_id, id) ON DELETE CASCADE
);
-- Claims read each endpoint's due deliveries on their own (a stuck endpoint's backlog never hides another's).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_lane ON webhook_deliveries (endpoint_id, lane, seq)
    WHERE state IN ('pending', 'delivering');
-- Workers name deliveries by seq (one bigint instead of two uuids) when they claim and record them.
CREATE UNIQUE INDEX webhook_deliveries_seq ON webhook_deliveries (seq);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (account_id, endpoint_id, seq DESC);
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (lease_until) WHERE state = 'delivering';

-- Failed attempts; a delivery that succeeded keeps its successful attempt in its own row (delivered_at,
-- last_status_code, last_latency_ms), which spares the busiest path a second write.
CREATE TABLE webhook_attempts (
    account_id   uuid NOT NULL,
    delivery_id  uuid NOT NULL,
    n            int NOT NULL,
    at           timestamptz NOT NULL,
    status_code  int,
    latency_ms   int NOT NULL,
    error        text,
    response     text,
    PRIMARY KEY (account_id, delivery_id, n),
    FOREIGN KEY (account_id, delivery_id) REFERENCES webhook_deliveries (account_id, id) ON DELETE CASCADE
);

-- How far the relay has read the events, across accounts; one row.
CREATE TABLE webhook_relay (
    id    int PRIMARY KEY CHECK (id = 1),
    xid   xid8 NOT NULL,
    seq   bigint NOT NULL
);
INSERT INTO webhook_relay (id, xid, seq) VALUES (1, '0', 0);
CREATE INDEX events_relay ON events (xid, seq);

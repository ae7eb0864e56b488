-- The web console (issue 12): people who sign in to /console, their sessions and one-time sign-in links.
-- A console user acts through the same REST API as a key would, with the scopes of their role; each user is
-- also an agent (agents.external_id 'console:<user id>') so threads can be assigned to them ("mine").

CREATE TABLE console_users (
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    email         text NOT NULL,               -- lower-cased; one person, one account (sign-in names no account)
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    password_hash text,                        -- argon2id; NULL until set (a sign-in link signs in without one)
    agent_id      uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id)
);
CREATE UNIQUE INDEX console_users_email ON console_users (email);

-- Only a SHA-256 of each token is kept: a copy of this table signs nobody in.
CREATE TABLE console_sessions (
    token_hash    bytea PRIMARY KEY,
    account_id    uuid NOT NULL,
    user_id       uuid NOT NULL,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,        -- absolute end; idleness ends it sooner (GATEWAY_CONSOLE_IDLE_MINUTES)
    revoked_at    timestamptz,
    FOREIGN KEY (account_id, user_id) REFERENCES console_users (account_id, id) ON DELETE CASCADE
);
CREATE INDEX console_sessions_user ON console_sessions (account_id, user_id);

CREATE TABLE console_signin_links (
    token_hash    bytea PRIMARY KEY,
    account_id    uuid NOT NULL,
    user_id       uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    FOREIGN KEY (account_id, user_id) REFERENCES console_users (account_id, id) ON DELETE CASCADE
);

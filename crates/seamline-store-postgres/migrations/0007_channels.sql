-- Channel accounts (a workspace's Telegram bot, ...) with their secrets
-- sealed by the server, and the durable outbox of outbound messages.

CREATE TABLE channel_accounts (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces (id),
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    settings       JSONB NOT NULL,
    -- Encrypted by the server (nonce + ciphertext); never in clear here.
    secrets        TEXT NOT NULL,
    path_token     TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    status         TEXT NOT NULL,
    status_detail  TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, path_token)
);
CREATE INDEX channel_accounts_workspace ON channel_accounts (workspace_id, created_at);

-- One row per outbound message: its id is the idempotency key.
CREATE TABLE channel_outbox (
    message_id       UUID PRIMARY KEY,
    workspace_id     UUID NOT NULL,
    profile_id       UUID NOT NULL,
    channel          TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    leased_until     TIMESTAMPTZ,
    last_error       TEXT,
    provider_id      TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX channel_outbox_due ON channel_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX channel_outbox_profile ON channel_outbox (workspace_id, profile_id);

-- Outbound webhooks: each workspace's endpoints and the durable queue of
-- deliveries to them, with every attempt logged.

CREATE TABLE webhook_endpoints (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id),
    url           TEXT NOT NULL,
    -- Kept readable: every delivery is signed with it.
    secret        TEXT NOT NULL,
    -- Event names; empty: all.
    events        TEXT[] NOT NULL,
    active        BOOLEAN NOT NULL,
    description   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, created_at);

CREATE TABLE webhook_deliveries (
    seq              BIGSERIAL PRIMARY KEY,
    id               UUID NOT NULL UNIQUE,
    workspace_id     UUID NOT NULL,
    endpoint_id      UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL,
    profile_id       UUID,
    payload          JSONB NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    leased_until     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (endpoint_id, dedupe_key)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (workspace_id, endpoint_id, seq);
CREATE INDEX webhook_deliveries_profile ON webhook_deliveries (workspace_id, profile_id);

CREATE TABLE webhook_attempts (
    id                BIGSERIAL PRIMARY KEY,
    workspace_id      UUID NOT NULL,
    delivery_id       UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at      TIMESTAMPTZ NOT NULL,
    status_code       INTEGER,
    duration_ms       INTEGER NOT NULL,
    error             TEXT,
    response_excerpt  TEXT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

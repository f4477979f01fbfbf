-- Outbound webhooks: each workspace's endpoints and the durable queue of
-- deliveries to them, with every attempt logged.

CREATE TABLE webhook_endpoints (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    url           TEXT NOT NULL,
    -- Kept readable: every delivery is signed with it.
    secret        TEXT NOT NULL,
    -- JSON array of event names; empty: all.
    events        TEXT NOT NULL,
    active        INTEGER NOT NULL,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints(workspace_id, created_at);

CREATE TABLE webhook_deliveries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               BLOB NOT NULL UNIQUE,
    workspace_id     BLOB NOT NULL,
    endpoint_id      BLOB NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL,
    profile_id       BLOB,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    leased_until     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (endpoint_id, dedupe_key)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_log ON webhook_deliveries(workspace_id, endpoint_id, seq);
CREATE INDEX webhook_deliveries_profile ON webhook_deliveries(workspace_id, profile_id);

CREATE TABLE webhook_attempts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id      BLOB NOT NULL,
    delivery_id       BLOB NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at      INTEGER NOT NULL,
    status_code       INTEGER,
    duration_ms       INTEGER NOT NULL,
    error             TEXT,
    response_excerpt  TEXT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, id);

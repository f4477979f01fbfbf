-- Seamline schema v1 (SQLite). Never edit a shipped migration: add a new one.
-- Ids are UUID v7 (16-byte BLOBs); times are Unix epoch milliseconds, UTC.

CREATE TABLE workspaces (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE members (
    id             BLOB PRIMARY KEY,
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id),
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX members_workspace ON members(workspace_id);

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    member_id     BLOB NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    plaintext     TEXT,
    secret_hash   TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_workspace ON api_keys(workspace_id);

-- The append-only event log. seq is the log position.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    id            BLOB NOT NULL,
    workspace_id  BLOB NOT NULL,
    message_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    event_name    TEXT,
    user_id       TEXT,
    anonymous_id  TEXT,
    timestamp     INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    enrichment    TEXT NOT NULL,
    payload       TEXT NOT NULL
);
CREATE UNIQUE INDEX events_message ON events(workspace_id, message_id);
CREATE INDEX events_workspace_seq ON events(workspace_id, seq);
CREATE INDEX events_user ON events(workspace_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_anonymous ON events(workspace_id, anonymous_id) WHERE anonymous_id IS NOT NULL;

-- Committed appends not yet published on the bus: one row per append.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    event_seqs    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    leased_until  INTEGER
);

CREATE TABLE import_checkpoints (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    source        TEXT NOT NULL,
    line          INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, source)
);

-- Sessions on shared devices, the events left anonymous on them, and each
-- workspace's settings (identity rules first).

ALTER TABLE profile_identifiers ADD COLUMN session_last_at TIMESTAMPTZ;
ALTER TABLE profile_identifiers ADD COLUMN anonymous_since TIMESTAMPTZ;

-- Events on a shared device that nobody was active on: a later login in
-- the same session claims them.
CREATE TABLE device_anonymous_events (
    workspace_id  UUID NOT NULL,
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    event_id      UUID NOT NULL,
    seq           BIGINT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, kind, value, event_id)
);
CREATE INDEX device_anonymous_events_event ON device_anonymous_events (workspace_id, event_id);

CREATE TABLE workspace_settings (
    workspace_id  UUID NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    value         JSONB NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

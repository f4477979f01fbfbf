-- Sessions on shared devices, the events left anonymous on them, and each
-- workspace's settings (identity rules first).

ALTER TABLE profile_identifiers ADD COLUMN session_last_at INTEGER;
ALTER TABLE profile_identifiers ADD COLUMN anonymous_since INTEGER;

-- Events on a shared device that nobody was active on: a later login in
-- the same session claims them.
CREATE TABLE device_anonymous_events (
    workspace_id  BLOB NOT NULL,
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    event_id      BLOB NOT NULL,
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, value, event_id)
);
CREATE INDEX device_anonymous_events_event ON device_anonymous_events(workspace_id, event_id);

CREATE TABLE workspace_settings (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    value         TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

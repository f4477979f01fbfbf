-- Delivery reports that arrived before their message's provider id was
-- recorded (channels.md §0: park and match later). One row per report:
-- a provider's re-send of the same status is kept once.
CREATE TABLE parked_deliveries (
    workspace_id  BLOB NOT NULL,
    channel       TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    received_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, channel, external_id, status)
);

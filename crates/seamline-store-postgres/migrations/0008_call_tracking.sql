-- Call tracking: tracking numbers (pool and static), the reservations of
-- pool numbers by site visitors (never deleted: calls are attributed by
-- the one holding the number when they start), pool misses per UTC day,
-- and the calls attributed, once per PBX call id.

CREATE TABLE call_tracking_numbers (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id),
    number        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- A static number's ad source (JSON); NULL for pool numbers.
    source        JSONB,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, number)
);

-- No foreign key to the number: the history outlives a removed number.
CREATE TABLE call_tracking_reservations (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL,
    number_id     UUID NOT NULL,
    number        TEXT NOT NULL,
    anonymous_id  TEXT NOT NULL,
    session_id    TEXT,
    source        JSONB NOT NULL,
    held_from     TIMESTAMPTZ NOT NULL,
    last_seen     TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX call_tracking_reservations_active ON call_tracking_reservations (workspace_id, expires_at);
CREATE INDEX call_tracking_reservations_number ON call_tracking_reservations (workspace_id, number, held_from);
CREATE INDEX call_tracking_reservations_pool ON call_tracking_reservations (number_id, expires_at);

CREATE TABLE call_tracking_misses (
    workspace_id  UUID NOT NULL,
    day           TEXT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, day)
);

CREATE TABLE call_tracking_calls (
    id              UUID PRIMARY KEY,
    workspace_id    UUID NOT NULL,
    call_id         TEXT NOT NULL,
    number          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    reservation_id  UUID,
    anonymous_id    TEXT,
    source          JSONB NOT NULL,
    source_label    TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, call_id)
);
CREATE INDEX call_tracking_calls_started ON call_tracking_calls (workspace_id, started_at);

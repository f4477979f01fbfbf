-- Identity: profiles, identifiers, merges, conflicts, consent; outbox consumers.

ALTER TABLE outbox ADD COLUMN consumer TEXT NOT NULL DEFAULT 'bus';
CREATE INDEX outbox_consumer ON outbox(consumer, id);

CREATE TABLE profiles (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    traits        TEXT NOT NULL DEFAULT '{}',
    trait_times   TEXT NOT NULL DEFAULT '{}',
    merged_into   BLOB
);
CREATE INDEX profiles_live ON profiles(workspace_id, last_seen, id) WHERE merged_into IS NULL;

CREATE TABLE profile_identifiers (
    workspace_id    BLOB NOT NULL REFERENCES workspaces(id),
    kind            TEXT NOT NULL,
    value           TEXT NOT NULL,
    profile_id      BLOB NOT NULL,
    first_seen      INTEGER NOT NULL,
    source          TEXT NOT NULL,
    source_event    BLOB,
    shared          INTEGER NOT NULL DEFAULT 0,
    active_profile  BLOB,
    PRIMARY KEY (workspace_id, kind, value)
);
CREATE INDEX profile_identifiers_profile ON profile_identifiers(workspace_id, profile_id);

-- Which profile each event belongs to.
CREATE TABLE event_profiles (
    workspace_id  BLOB NOT NULL,
    event_id      BLOB NOT NULL,
    seq           INTEGER NOT NULL,
    profile_id    BLOB NOT NULL,
    PRIMARY KEY (workspace_id, event_id)
);
CREATE INDEX event_profiles_profile ON event_profiles(workspace_id, profile_id, seq);

CREATE TABLE merges (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL,
    survivor      BLOB NOT NULL,
    absorbed      BLOB NOT NULL,
    via_kind      TEXT,
    via_value     TEXT,
    event_id      BLOB,
    actor         TEXT,
    at            INTEGER NOT NULL,
    undone_at     INTEGER
);
CREATE INDEX merges_survivor ON merges(workspace_id, survivor);

CREATE TABLE identity_conflicts (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL,
    profile       BLOB NOT NULL,
    other         BLOB NOT NULL,
    via_kind      TEXT NOT NULL,
    via_value     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    event_id      BLOB,
    at            INTEGER NOT NULL,
    resolved_at   INTEGER
);
CREATE INDEX identity_conflicts_open ON identity_conflicts(workspace_id, resolved_at);

CREATE TABLE separations (
    workspace_id  BLOB NOT NULL,
    a             BLOB NOT NULL,
    b             BLOB NOT NULL,
    PRIMARY KEY (workspace_id, a, b)
);

CREATE TABLE consents (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL,
    profile_id    BLOB NOT NULL,
    purpose       TEXT NOT NULL,
    channel       TEXT NOT NULL,
    granted       INTEGER NOT NULL,
    source        TEXT NOT NULL,
    wording       TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX consents_profile ON consents(workspace_id, profile_id, at);

-- Fingerprints (SHA-256) of erased identifiers: never link again.
CREATE TABLE erased_identifiers (
    workspace_id  BLOB NOT NULL,
    fingerprint   TEXT NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, fingerprint)
);

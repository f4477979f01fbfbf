-- Identity: profiles, identifiers, merges, conflicts, consent; outbox consumers.

ALTER TABLE outbox ADD COLUMN consumer TEXT NOT NULL DEFAULT 'bus';
CREATE INDEX outbox_consumer ON outbox (consumer, id);

CREATE TABLE profiles (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id),
    first_seen    TIMESTAMPTZ NOT NULL,
    last_seen     TIMESTAMPTZ NOT NULL,
    traits        JSONB NOT NULL DEFAULT '{}',
    trait_times   JSONB NOT NULL DEFAULT '{}',
    merged_into   UUID
);
CREATE INDEX profiles_live ON profiles (workspace_id, last_seen, id) WHERE merged_into IS NULL;

CREATE TABLE profile_identifiers (
    workspace_id    UUID NOT NULL REFERENCES workspaces (id),
    kind            TEXT NOT NULL,
    value           TEXT NOT NULL,
    profile_id      UUID NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL,
    source          TEXT NOT NULL,
    source_event    UUID,
    shared          BOOLEAN NOT NULL DEFAULT FALSE,
    active_profile  UUID,
    PRIMARY KEY (workspace_id, kind, value)
);
CREATE INDEX profile_identifiers_profile ON profile_identifiers (workspace_id, profile_id);

CREATE TABLE event_profiles (
    workspace_id  UUID NOT NULL,
    event_id      UUID NOT NULL,
    seq           BIGINT NOT NULL,
    profile_id    UUID NOT NULL,
    PRIMARY KEY (workspace_id, event_id)
);
CREATE INDEX event_profiles_profile ON event_profiles (workspace_id, profile_id, seq);

CREATE TABLE merges (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL,
    survivor      UUID NOT NULL,
    absorbed      UUID NOT NULL,
    via_kind      TEXT,
    via_value     TEXT,
    event_id      UUID,
    actor         TEXT,
    at            TIMESTAMPTZ NOT NULL,
    undone_at     TIMESTAMPTZ
);
CREATE INDEX merges_survivor ON merges (workspace_id, survivor);

CREATE TABLE identity_conflicts (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL,
    profile       UUID NOT NULL,
    other         UUID NOT NULL,
    via_kind      TEXT NOT NULL,
    via_value     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    event_id      UUID,
    at            TIMESTAMPTZ NOT NULL,
    resolved_at   TIMESTAMPTZ
);
CREATE INDEX identity_conflicts_open ON identity_conflicts (workspace_id, resolved_at);

CREATE TABLE separations (
    workspace_id  UUID NOT NULL,
    a             UUID NOT NULL,
    b             UUID NOT NULL,
    PRIMARY KEY (workspace_id, a, b)
);

CREATE TABLE consents (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL,
    profile_id    UUID NOT NULL,
    purpose       TEXT NOT NULL,
    channel       TEXT NOT NULL,
    granted       BOOLEAN NOT NULL,
    source        TEXT NOT NULL,
    wording       TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX consents_profile ON consents (workspace_id, profile_id, at);

CREATE TABLE erased_identifiers (
    workspace_id  UUID NOT NULL,
    fingerprint   TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, fingerprint)
);

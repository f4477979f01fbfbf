-- The omnichannel inbox: teams and operators, one conversation per customer
-- profile with its messages, canned responses, CSAT and the assignment audit.
-- Stands on 0002 alone (0003 is another change's).

CREATE TABLE teams (
    id              UUID PRIMARY KEY,
    workspace_id    UUID NOT NULL REFERENCES workspaces (id),
    name            TEXT NOT NULL,
    routing         JSONB NOT NULL,
    hours           JSONB,
    channels        JSONB NOT NULL,
    bots            JSONB NOT NULL,
    -- Who last got a conversation by the team's rule (round robin).
    routing_cursor  UUID REFERENCES members (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE team_members (
    workspace_id  UUID NOT NULL,
    team_id       UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    member_id     UUID NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, member_id)
);
CREATE INDEX team_members_member ON team_members (workspace_id, member_id);

-- Presence and capacity; a member without a row is offline, default capacity.
CREATE TABLE operators (
    member_id       UUID PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
    workspace_id    UUID NOT NULL,
    presence        TEXT NOT NULL,
    presence_since  TIMESTAMPTZ,
    capacity        BIGINT
);

-- Numbers conversations' activity: the newest activity has the highest.
CREATE SEQUENCE conversation_activity;

CREATE TABLE conversations (
    id                    UUID PRIMARY KEY,
    workspace_id          UUID NOT NULL REFERENCES workspaces (id),
    profile_id            UUID NOT NULL,
    status                TEXT NOT NULL,
    snoozed_until         TIMESTAMPTZ,
    assignee              UUID REFERENCES members (id) ON DELETE SET NULL,
    team_id               UUID REFERENCES teams (id) ON DELETE SET NULL,
    priority              TEXT NOT NULL,
    labels                JSONB NOT NULL,
    last_inbound_channel  TEXT,
    last_inbound_at       TIMESTAMPTZ,
    waiting_since         TIMESTAMPTZ,
    bot_state             JSONB NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    last_message_at       TIMESTAMPTZ,
    last_message_channel  TEXT,
    unread                BIGINT NOT NULL,
    activity_seq          BIGINT NOT NULL,
    version               BIGINT NOT NULL,
    UNIQUE (workspace_id, profile_id)
);
CREATE INDEX conversations_activity ON conversations (workspace_id, activity_seq);
CREATE INDEX conversations_assignee ON conversations (assignee, status);
CREATE INDEX conversations_team ON conversations (team_id);

CREATE TABLE conversation_messages (
    id               UUID PRIMARY KEY,
    workspace_id     UUID NOT NULL,
    conversation_id  UUID NOT NULL REFERENCES conversations (id),
    -- The customer whose conversation it was written in; kept through merges.
    profile_id       UUID NOT NULL,
    kind             TEXT NOT NULL,
    -- The operator, note author or event actor.
    actor            UUID,
    -- The whole MessageKind (mentions, event) as JSON.
    details          JSONB NOT NULL,
    channel          TEXT NOT NULL,
    body             TEXT NOT NULL,
    sender           TEXT,
    attachments      JSONB NOT NULL,
    external_id      TEXT,
    delivery         TEXT,
    delivery_reason  TEXT,
    at               TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversation_messages_timeline ON conversation_messages (conversation_id, at, id);
CREATE INDEX conversation_messages_profile ON conversation_messages (workspace_id, profile_id);
CREATE UNIQUE INDEX conversation_messages_external
    ON conversation_messages (workspace_id, channel, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE canned_responses (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id),
    shortcut      TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, shortcut)
);

-- Operator and team are kept as given, for reports after they are gone.
CREATE TABLE csat_ratings (
    id               UUID PRIMARY KEY,
    workspace_id     UUID NOT NULL,
    conversation_id  UUID NOT NULL REFERENCES conversations (id),
    operator         UUID,
    team_id          UUID,
    score            INTEGER NOT NULL,
    at               TIMESTAMPTZ NOT NULL
);
CREATE INDEX csat_ratings_at ON csat_ratings (workspace_id, at);
CREATE INDEX csat_ratings_conversation ON csat_ratings (conversation_id);

CREATE TABLE assignment_audit (
    id               UUID PRIMARY KEY,
    workspace_id     UUID NOT NULL,
    conversation_id  UUID NOT NULL REFERENCES conversations (id),
    from_operator    UUID,
    from_team        UUID,
    to_operator      UUID,
    to_team          UUID,
    reason           TEXT,
    actor            UUID,
    note             TEXT,
    at               TIMESTAMPTZ NOT NULL
);
CREATE INDEX assignment_audit_conversation ON assignment_audit (conversation_id, at);

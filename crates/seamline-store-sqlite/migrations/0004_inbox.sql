-- The omnichannel inbox: teams and operators, one conversation per customer
-- profile with its messages, canned responses, CSAT and the assignment audit.
-- Stands on 0002 alone (0003 is another change's).

CREATE TABLE teams (
    id              BLOB PRIMARY KEY,
    workspace_id    BLOB NOT NULL REFERENCES workspaces(id),
    name            TEXT NOT NULL,
    routing         TEXT NOT NULL,
    hours           TEXT,
    channels        TEXT NOT NULL,
    bots            TEXT NOT NULL,
    -- Who last got a conversation by the team's rule (round robin).
    routing_cursor  BLOB REFERENCES members(id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE team_members (
    workspace_id  BLOB NOT NULL,
    team_id       BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    member_id     BLOB NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, member_id)
);
CREATE INDEX team_members_member ON team_members(workspace_id, member_id);

-- Presence and capacity; a member without a row is offline, default capacity.
CREATE TABLE operators (
    member_id       BLOB PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
    workspace_id    BLOB NOT NULL,
    presence        TEXT NOT NULL,
    presence_since  INTEGER,
    capacity        INTEGER
);

CREATE TABLE conversations (
    id                    BLOB PRIMARY KEY,
    workspace_id          BLOB NOT NULL REFERENCES workspaces(id),
    profile_id            BLOB NOT NULL,
    status                TEXT NOT NULL,
    snoozed_until         INTEGER,
    assignee              BLOB REFERENCES members(id) ON DELETE SET NULL,
    team_id               BLOB REFERENCES teams(id) ON DELETE SET NULL,
    priority              TEXT NOT NULL,
    labels                TEXT NOT NULL,
    last_inbound_channel  TEXT,
    last_inbound_at       INTEGER,
    waiting_since         INTEGER,
    bot_state             TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    last_message_at       INTEGER,
    last_message_channel  TEXT,
    unread                INTEGER NOT NULL,
    activity_seq          INTEGER NOT NULL,
    version               INTEGER NOT NULL,
    UNIQUE (workspace_id, profile_id)
);
CREATE INDEX conversations_activity ON conversations(workspace_id, activity_seq);
CREATE INDEX conversations_assignee ON conversations(assignee, status);
CREATE INDEX conversations_team ON conversations(team_id);

CREATE TABLE conversation_messages (
    id               BLOB PRIMARY KEY,
    workspace_id     BLOB NOT NULL,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id),
    -- The customer whose conversation it was written in; kept through merges.
    profile_id       BLOB NOT NULL,
    kind             TEXT NOT NULL,
    -- The operator, note author or event actor.
    actor            BLOB,
    -- The whole MessageKind (mentions, event) as JSON.
    details          TEXT NOT NULL,
    channel          TEXT NOT NULL,
    body             TEXT NOT NULL,
    sender           TEXT,
    attachments      TEXT NOT NULL,
    external_id      TEXT,
    delivery         TEXT,
    delivery_reason  TEXT,
    at               INTEGER NOT NULL
);
CREATE INDEX conversation_messages_timeline ON conversation_messages(conversation_id, at, id);
CREATE INDEX conversation_messages_profile ON conversation_messages(workspace_id, profile_id);
CREATE UNIQUE INDEX conversation_messages_external
    ON conversation_messages(workspace_id, channel, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE canned_responses (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id),
    shortcut      TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, shortcut)
);

-- Operator and team are kept as given, for reports after they are gone.
CREATE TABLE csat_ratings (
    id               BLOB PRIMARY KEY,
    workspace_id     BLOB NOT NULL,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id),
    operator         BLOB,
    team_id          BLOB,
    score            INTEGER NOT NULL,
    at               INTEGER NOT NULL
);
CREATE INDEX csat_ratings_at ON csat_ratings(workspace_id, at);
CREATE INDEX csat_ratings_conversation ON csat_ratings(conversation_id);

CREATE TABLE assignment_audit (
    id               BLOB PRIMARY KEY,
    workspace_id     BLOB NOT NULL,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id),
    from_operator    BLOB,
    from_team        BLOB,
    to_operator      BLOB,
    to_team          BLOB,
    reason           TEXT,
    actor            BLOB,
    note             TEXT,
    at               INTEGER NOT NULL
);
CREATE INDEX assignment_audit_conversation ON assignment_audit(conversation_id, at);

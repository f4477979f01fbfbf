-- A satisfaction survey sent after a resolve, until the customer answers
-- it or writes something else. At most one per conversation.
CREATE TABLE csat_surveys (
    conversation_id  UUID PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    workspace_id     UUID NOT NULL,
    operator         UUID,
    team_id          UUID,
    sent_at          TIMESTAMPTZ NOT NULL
);

-- A satisfaction survey sent after a resolve, until the customer answers
-- it or writes something else. At most one per conversation.
CREATE TABLE csat_surveys (
    conversation_id  BLOB PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    workspace_id     BLOB NOT NULL,
    operator         BLOB,
    team_id          BLOB,
    sent_at          INTEGER NOT NULL
);

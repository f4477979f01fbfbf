-- Replies still waiting to be queued for their channel: the sender's sweep
-- (for replies whose enqueue a crash lost) finds them without reading
-- every message.
CREATE INDEX conversation_messages_pending ON conversation_messages (id)
    WHERE delivery = 'pending';

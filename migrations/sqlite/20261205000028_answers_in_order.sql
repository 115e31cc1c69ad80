-- A chat's command answers waiting in the outbox, oldest first: a claim takes only the
-- oldest of one chat's, and a new answer to that chat queues behind them, so a chat reads
-- its answers in the order its commands came.
CREATE INDEX outbox_answers_waiting ON outbox (channel, recipient, id)
    WHERE kind = 'answer' AND status IN ('queued', 'failed', 'sending');

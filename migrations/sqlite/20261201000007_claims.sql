-- A sender's claim on an outbox row carries a token: only the holder of the row's current
-- claim may mark it, so a stalled sender's late answer cannot overwrite a newer outcome.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;

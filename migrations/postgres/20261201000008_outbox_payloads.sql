-- A message's rendered payload (often 10 KB and more) lives beside its outbox row, not in
-- it: the row is updated at every claim and mark (PostgreSQL keeps large values out of line
-- already; the split keeps both engines on one set of queries).
CREATE TABLE outbox_payloads (
    outbox_id BIGINT PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    payload TEXT NOT NULL
);
INSERT INTO outbox_payloads (outbox_id, payload) SELECT id, payload FROM outbox;
ALTER TABLE outbox DROP COLUMN payload;
-- Every column of a message, payload included, for reading.
CREATE VIEW outbox_full AS
    SELECT o.*, p.payload FROM outbox o JOIN outbox_payloads p ON p.outbox_id = o.id;

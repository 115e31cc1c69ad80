-- A sent message's content may be cleared after `outbox.sent_content_days` (its payload row
-- deleted): the message itself still reads, with an empty payload.
DROP VIEW outbox_full;
CREATE VIEW outbox_full AS
    SELECT o.*, COALESCE(p.payload, '') AS payload FROM outbox o LEFT JOIN outbox_payloads p ON p.outbox_id = o.id;

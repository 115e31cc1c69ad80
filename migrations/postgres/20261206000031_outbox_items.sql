-- The action items each queued digest, alert or reminder tells of. A contact is noted as
-- told of an item (item_notices, the chase list's "first sent") when the message is sent,
-- not when it is queued: one held by quiet hours, gone dead or dropped told no one. The
-- rows of a message go once it is sent.
CREATE TABLE outbox_items (
    outbox_id BIGINT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    item_key TEXT NOT NULL,
    PRIMARY KEY (outbox_id, item_key)
);

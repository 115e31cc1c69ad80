-- One notice for each message that told a contact of an item, not one for the item: a
-- contact told by an alert that went is still told when a digest listing the item after it
-- is dropped, and the chase list's "first sent" is the earliest of those that went. A
-- message's notice is written once (a key listed twice in it is one notice). SQLite cannot
-- drop a primary key, so the table is built again (without a notice of a contact that is no
-- longer there, which its foreign key would refuse).
CREATE TABLE item_notices_by_message (
    item_key TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    first_at TEXT NOT NULL,
    outbox_id BIGINT
);
INSERT INTO item_notices_by_message (item_key, contact_id, channel, first_at, outbox_id)
    SELECT item_key, contact_id, channel, first_at, outbox_id FROM item_notices
    WHERE contact_id IN (SELECT id FROM contacts);
DROP TABLE item_notices;
ALTER TABLE item_notices_by_message RENAME TO item_notices;
CREATE INDEX item_notices_told ON item_notices(item_key, contact_id, channel);
CREATE UNIQUE INDEX item_notices_message ON item_notices(outbox_id, item_key, contact_id, channel);

-- One notice for each message that told a contact of an item, not one for the item: a
-- contact told by an alert that went is still told when a digest listing the item after it
-- is dropped, and the chase list's "first sent" is the earliest of those that went. A
-- message's notice is written once (a key listed twice in it is one notice).
ALTER TABLE item_notices DROP CONSTRAINT item_notices_pkey;
CREATE INDEX item_notices_told ON item_notices(item_key, contact_id, channel);
CREATE UNIQUE INDEX item_notices_message ON item_notices(outbox_id, item_key, contact_id, channel);

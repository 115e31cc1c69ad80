-- A held message's bytes when they are not UTF-8 text (an 8-bit body in another charset):
-- `raw` keeps a readable copy for the console, and releasing it reads these, as received.
ALTER TABLE inbound_messages ADD COLUMN raw_bytes BYTEA;

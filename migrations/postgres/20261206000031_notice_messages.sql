-- The message that told a contact of an item (a digest, an alert or a reminder queued for
-- them). The contact counts as told once that message is sent, at its sent_at: one still
-- queued, held by quiet hours, dead or dropped told no one, and the next message listing the
-- item takes its place. Notices written before this column hold no message: told at first_at.
ALTER TABLE item_notices ADD COLUMN outbox_id BIGINT;

-- When an update's answers were sent (or queued): one run but never answered (the process
-- stopped between the two) is told so when its chat provider delivers it again.
ALTER TABLE chat_updates ADD COLUMN answered_at TEXT;
UPDATE chat_updates SET answered_at = seen_at;

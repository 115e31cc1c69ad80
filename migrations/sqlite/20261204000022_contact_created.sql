-- When cport first stored a contact (none for those stored before this): a link made before
-- it was made for someone else, whose record had the same id and was removed.
ALTER TABLE contacts ADD COLUMN created_at TEXT;

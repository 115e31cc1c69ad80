-- When a staff account's password was last set: a password link made before it is spent.
ALTER TABLE staff ADD COLUMN password_set_at TEXT;

-- When a contact's digest schedule or time zone last changed (TOT's record, or the contact's
-- own settings): a period of the new schedule that began before then was never owed, so
-- changing the time of day does not send a second digest at once.
ALTER TABLE contacts ADD COLUMN schedule_set_at TEXT;
ALTER TABLE contact_settings ADD COLUMN schedule_set_at TEXT;

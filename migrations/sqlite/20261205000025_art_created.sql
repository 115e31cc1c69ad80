-- When cport first stored an art requirement (TOT sends no date for it; none for those stored
-- before this): the time its artwork has been waited for, for the chase list and the alerts.
ALTER TABLE art_requirements ADD COLUMN created_at TEXT;

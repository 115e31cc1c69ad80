-- The configured digest clock (`digest.schedule`, `digest.timezone`: one row each) as cport last
-- ran with it, and when a run first found it changed: like a contact's own schedule_set_at,
-- a period of the new clock that began before then is owed only to a contact that had no
-- digest since the slot before it, so a restart with 09:00 after the 08:00 digest went
-- does not send a second one at once.
CREATE TABLE configured_clocks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    set_at TEXT
);

-- When a client's admin revoked a third-party user: TOT's later updates of the contact keep
-- it inactive (the revoke is the client's to make, and to undo by adding the person again).
ALTER TABLE contacts ADD COLUMN revoked_at TIMESTAMPTZ;

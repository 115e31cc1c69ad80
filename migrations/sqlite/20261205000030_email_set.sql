-- When TOT last gave a contact another email address: the sessions and signed links made
-- before then were for whoever read the old address, and no longer open anything.
ALTER TABLE contacts ADD COLUMN email_set_at TEXT;

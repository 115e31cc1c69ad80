-- Each kind of email a contact may turn off by itself (a mail client's one-click
-- unsubscribe turns off the kind it came with); email_enabled still turns off all email.
ALTER TABLE contact_settings ADD COLUMN email_digests BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE contact_settings ADD COLUMN email_alerts BOOLEAN NOT NULL DEFAULT TRUE;

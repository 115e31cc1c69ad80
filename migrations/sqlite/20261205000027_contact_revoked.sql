-- When a client's admin revoked a third-party user: TOT's later updates of the contact keep
-- it inactive (the revoke is the client's to make, and to undo by adding the person again).
ALTER TABLE contacts ADD COLUMN revoked_at TEXT;
-- Those revoked before this are known by the change feed's events.
UPDATE contacts SET revoked_at = (SELECT MAX(ch.created_at) FROM changes ch
    WHERE ch.kind = 'third_party_user_revoked' AND ch.subject_id = contacts.id AND ch.client_id = contacts.client_id)
WHERE role = 'third_party' AND NOT active;

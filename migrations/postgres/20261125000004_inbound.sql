-- Email in: every message read once (by Message-ID), what became of it, and the raw text of
-- those held for staff. Artwork clients sent by email.

CREATE TABLE inbound_messages (
    message_id TEXT PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    contact_id TEXT,
    disposition TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT
);
CREATE INDEX inbound_messages_disposition ON inbound_messages(disposition, received_at);

CREATE TABLE artwork_uploads (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    path TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- What cport itself keeps: contact preferences, the outbox, digest and alert ledgers,
-- and the nonces of single-use links.

CREATE TABLE contact_settings (
    contact_id TEXT PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    timezone TEXT,
    digest_schedule TEXT,
    quiet_start TEXT,
    quiet_end TEXT,
    mode_visual_approval TEXT,
    mode_delivery_instructions TEXT,
    mode_third_party_po TEXT,
    mode_awaiting_art TEXT,
    email_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    email_suspended_at TIMESTAMPTZ,
    email_suspended_reason TEXT,
    soft_bounces BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Every message cport sends. idem_key makes a decision to send happen once.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    contact_id TEXT,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    idem_key TEXT NOT NULL UNIQUE,
    reply_token TEXT UNIQUE,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ,
    last_error TEXT,
    provider_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_contact ON outbox(contact_id, channel, kind, created_at);

-- One row per contact, channel and digest period once that period has been decided,
-- whether or not a digest went out (an empty digest is not sent).
CREATE TABLE digest_runs (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    period TEXT NOT NULL,
    outbox_id BIGINT,
    item_count BIGINT NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contact_id, channel, period)
);

-- One row per contact, channel and item ever alerted (outbox_id NULL: present at the
-- baseline, never alerted): an item is alerted once.
CREATE TABLE alert_ledger (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    category TEXT NOT NULL,
    item_id TEXT NOT NULL,
    outbox_id BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contact_id, channel, category, item_id)
);

-- A contact's first alert scan records what already exists, so only what appears later
-- is alerted (an import of old data sends no flood of alerts).
CREATE TABLE alert_baselines (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contact_id, channel)
);

CREATE TABLE used_nonces (
    nonce TEXT PRIMARY KEY,
    used_at TIMESTAMPTZ NOT NULL
);

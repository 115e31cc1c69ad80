-- TOT's staff: accounts for the console at /staff, their sessions (kept apart from
-- clients' sessions), and a record of every action they take there.
CREATE TABLE staff (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    removed_at TIMESTAMPTZ
);

CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id BIGINT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX staff_sessions_staff ON staff_sessions(staff_id);

CREATE TABLE staff_audit (
    id BIGSERIAL PRIMARY KEY,
    staff_email TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_audit_at ON staff_audit(at);

-- Someone without an account asking for one from the sign-in page; staff decide.
CREATE TABLE access_requests (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    company TEXT NOT NULL,
    note TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    decided_by TEXT,
    decided_at TIMESTAMPTZ
);
CREATE INDEX access_requests_status ON access_requests(status, created_at);

-- When each contact was first told of each action item, and on which channel (digests,
-- alerts and reminders write it): the chase list's "first sent".
CREATE TABLE item_notices (
    item_key TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    first_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (item_key, contact_id, channel)
);

-- Every send of a message that did not deliver it, with its error (a delivered one is
-- told by the message's own sent_at): the console's attempt history.
CREATE TABLE outbox_attempts (
    id BIGSERIAL PRIMARY KEY,
    outbox_id BIGINT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    at TIMESTAMPTZ NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL
);
CREATE INDEX outbox_attempts_message ON outbox_attempts(outbox_id);

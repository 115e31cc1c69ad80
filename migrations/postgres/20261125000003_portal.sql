-- The mini-portal: accounts, sessions, client actions and the change feed.

CREATE TABLE accounts (
    contact_id TEXT PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    password_set_at TIMESTAMPTZ NOT NULL
);

-- The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    -- A delegated session may see and act on one visual only.
    delegation_id BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX sessions_contact ON sessions(contact_id);

-- A visual a contact handed to a third party: one approval or rejection, once.
CREATE TABLE delegations (
    id BIGSERIAL PRIMARY KEY,
    visual_id TEXT NOT NULL REFERENCES visuals(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);

-- Comments written in the portal (TOT's own arrive with the visual through sync).
CREATE TABLE portal_comments (
    id BIGSERIAL PRIMARY KEY,
    visual_id TEXT NOT NULL REFERENCES visuals(id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);

-- What a visual's status was set to by a client action, and by whom.
CREATE TABLE visual_decisions (
    id BIGSERIAL PRIMARY KEY,
    visual_id TEXT NOT NULL REFERENCES visuals(id) ON DELETE CASCADE,
    decision TEXT NOT NULL,
    reason TEXT,
    decided_by TEXT NOT NULL,
    channel TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);

-- Delivery instructions: an address and date for lines of one or more jobs, or "none needed".
CREATE TABLE delivery_requests (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    address TEXT,
    required_date DATE,
    contact_name TEXT,
    notes TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE delivery_request_lines (
    request_id BIGINT NOT NULL REFERENCES delivery_requests(id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    qty BIGINT NOT NULL,
    PRIMARY KEY (request_id, job_id, line_no)
);
CREATE INDEX delivery_request_lines_job ON delivery_request_lines(job_id, line_no);

-- The change feed TOT's system reads. seq comes from feed_counter, updated in the writing
-- transaction: a second writer waits for the first to commit, so events become visible in
-- sequence order and a reader paging with ?after= never skips one.
CREATE TABLE feed_counter (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO feed_counter (id, seq) VALUES (1, 0);

CREATE TABLE changes (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    contact_id TEXT,
    subject_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Chat: which Telegram or Discord user is which contact, the one-time codes that tie them,
-- the one question a chat may be answering (a rejection's reason), updates seen once, and
-- chats that asked for no more messages although TOT's contact record names them.

CREATE TABLE chat_links (
    channel TEXT NOT NULL,
    user_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    linked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, user_id),
    UNIQUE (channel, contact_id)
);

CREATE TABLE chat_codes (
    code_hash TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);

CREATE TABLE chat_pending (
    channel TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, user_id)
);

CREATE TABLE chat_updates (
    channel TEXT NOT NULL,
    update_id TEXT NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, update_id)
);

CREATE TABLE chat_optouts (
    channel TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, user_id)
);

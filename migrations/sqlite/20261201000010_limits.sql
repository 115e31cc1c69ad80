-- Limits shared by every process on this database (see src/store/limits.rs); times are
-- milliseconds since the epoch.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits(window_start);

CREATE TABLE paces (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL,
    go BIGINT NOT NULL
);
CREATE INDEX paces_tat ON paces(tat);

-- Each pace carries its own rate, so one statement reserves several paces of different
-- rates (see src/store/limits.rs).
ALTER TABLE paces ADD COLUMN interval_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE paces ADD COLUMN tolerance_ms BIGINT NOT NULL DEFAULT 0;

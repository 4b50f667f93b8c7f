-- The same columns as migrations/sqlite/0005_tokens_estimated.sql, integers as BIGINT.
ALTER TABLE usage_log ADD COLUMN tokens_estimated BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN estimated BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_by_session ADD COLUMN estimated BIGINT NOT NULL DEFAULT 0;

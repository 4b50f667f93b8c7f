-- A class made through the admin API or the dashboard keeps its own retention (issue 23),
-- as a class in the classes file does with keep_*_days: days its conversations, usage rows
-- and sessions are kept, 0 until erased, NULL the server's KEEP_*_DAYS.
ALTER TABLE classes ADD COLUMN keep_conversations_days BIGINT;
ALTER TABLE classes ADD COLUMN keep_usage_days BIGINT;
ALTER TABLE classes ADD COLUMN keep_sessions_days BIGINT;

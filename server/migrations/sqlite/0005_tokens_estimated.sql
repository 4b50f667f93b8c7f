-- Token counts classchat estimated because the upstream reported none (a stream without a
-- usage chunk): 1 on such a usage row, 0 when the counts are the upstream's own. The rollups
-- count the rows whose tokens were estimated, so the dashboard can mark such totals.
ALTER TABLE usage_log ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_by_session ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;

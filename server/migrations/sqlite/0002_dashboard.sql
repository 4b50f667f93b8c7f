-- Sign-ins, so the dashboard can list students and count active sessions.
CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY NOT NULL,
    class_id      TEXT NOT NULL,
    display_name  TEXT,
    started_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
);
CREATE INDEX sessions_class_seen ON sessions (class_id, last_seen_ms);

-- Rollups kept in step with usage_log by the usage writer (same transaction), so the
-- dashboard reads a few hundred rows instead of scanning a year of log.
CREATE TABLE usage_hourly (
    class_id  TEXT NOT NULL,
    hour_ms   INTEGER NOT NULL,          -- start of the UTC hour
    messages  INTEGER NOT NULL DEFAULT 0,
    tokens    INTEGER NOT NULL DEFAULT 0,
    errors    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (class_id, hour_ms)
) WITHOUT ROWID;

CREATE TABLE usage_by_session (
    class_id     TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    display_name TEXT,
    messages     INTEGER NOT NULL DEFAULT 0,
    tokens       INTEGER NOT NULL DEFAULT 0,
    last_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (class_id, session_id)
) WITHOUT ROWID;
CREATE INDEX usage_by_session_messages ON usage_by_session (class_id, messages DESC);

-- Recent upstream errors per class without scanning successful rows.
CREATE INDEX usage_log_errors ON usage_log (class_id, at_ms) WHERE outcome = 'upstream_error';
-- Export by date range.
CREATE INDEX usage_log_at ON usage_log (at_ms);

-- What the dashboard changed; it wins over the configuration until reset.
CREATE TABLE class_overrides (
    class_id    TEXT PRIMARY KEY NOT NULL,
    codes       TEXT,                    -- JSON array of normalised codes, or NULL: configured codes
    enabled     INTEGER,                 -- NULL: configured
    daily_quota INTEGER,                 -- NULL: configured
    updated_by  TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- Every dashboard action: who, when, what.
CREATE TABLE admin_audit (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    class_id TEXT,
    detail   TEXT NOT NULL
);
CREATE INDEX admin_audit_class ON admin_audit (class_id, id);

-- Existing usage rows (from before this migration) go into the rollups once.
INSERT INTO usage_hourly (class_id, hour_ms, messages, tokens, errors)
SELECT class_id, (at_ms / 3600000) * 3600000, COUNT(*),
       SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)),
       SUM(outcome = 'upstream_error')
FROM usage_log GROUP BY 1, 2;
INSERT INTO usage_by_session (class_id, session_id, display_name, messages, tokens, last_at_ms)
SELECT class_id, session_id, MAX(display_name), COUNT(*),
       SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), MAX(at_ms)
FROM usage_log GROUP BY 1, 2;

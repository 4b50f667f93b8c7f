-- The PostgreSQL schema: the same tables and columns as migrations/sqlite (0001 and 0002
-- together), with every integer a BIGINT so both drivers read them as i64.

CREATE TABLE revoked_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    class_id   TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,    -- Unix seconds
    expires_at BIGINT NOT NULL,    -- Unix seconds: the session's end
    reason     TEXT NOT NULL       -- 'logout' | 'admin'
);
CREATE INDEX revoked_sessions_expires ON revoked_sessions (expires_at);

CREATE TABLE usage_log (
    id                BIGSERIAL PRIMARY KEY,
    at_ms             BIGINT NOT NULL,
    class_id          TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    display_name      TEXT,
    conversation_id   TEXT NOT NULL,
    model             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    first_token_ms    BIGINT,
    total_ms          BIGINT NOT NULL,
    outcome           TEXT NOT NULL,
    error_code        TEXT
);
CREATE INDEX usage_log_class_at ON usage_log (class_id, at_ms);
CREATE INDEX usage_log_session_at ON usage_log (session_id, at_ms);
CREATE INDEX usage_log_errors ON usage_log (class_id, at_ms) WHERE outcome = 'upstream_error';
CREATE INDEX usage_log_at ON usage_log (at_ms);

CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY NOT NULL,
    class_id      TEXT NOT NULL,
    display_name  TEXT,
    started_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL
);
CREATE INDEX sessions_class_seen ON sessions (class_id, last_seen_ms);

CREATE TABLE usage_hourly (
    class_id  TEXT NOT NULL,
    hour_ms   BIGINT NOT NULL,
    messages  BIGINT NOT NULL DEFAULT 0,
    tokens    BIGINT NOT NULL DEFAULT 0,
    errors    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (class_id, hour_ms)
);

CREATE TABLE usage_by_session (
    class_id     TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    display_name TEXT,
    messages     BIGINT NOT NULL DEFAULT 0,
    tokens       BIGINT NOT NULL DEFAULT 0,
    last_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (class_id, session_id)
);
CREATE INDEX usage_by_session_messages ON usage_by_session (class_id, messages DESC);

CREATE TABLE class_overrides (
    class_id    TEXT PRIMARY KEY NOT NULL,
    codes       TEXT,                    -- JSON array of normalised codes, or NULL
    enabled     BIGINT,                  -- 0/1, NULL: configured
    daily_quota BIGINT,
    updated_by  TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE admin_audit (
    id       BIGSERIAL PRIMARY KEY,
    at_ms    BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    class_id TEXT,
    detail   TEXT NOT NULL
);
CREATE INDEX admin_audit_class ON admin_audit (class_id, id);

-- Sessions signed out or revoked before their tokens expire. Kept until the session's
-- maximum age has passed; after that its tokens cannot verify anyway.
CREATE TABLE revoked_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    class_id   TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,   -- Unix seconds
    expires_at INTEGER NOT NULL,   -- Unix seconds: the session's end
    reason     TEXT NOT NULL       -- 'logout' | 'admin'
);
CREATE INDEX revoked_sessions_expires ON revoked_sessions (expires_at);

-- One row per chat request.
CREATE TABLE usage_log (
    id                INTEGER PRIMARY KEY,
    at_ms             INTEGER NOT NULL,  -- Unix milliseconds, request start
    class_id          TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    display_name      TEXT,
    conversation_id   TEXT NOT NULL,
    model             TEXT,
    prompt_tokens     INTEGER,           -- NULL when the upstream did not report usage
    completion_tokens INTEGER,
    first_token_ms    INTEGER,           -- NULL when no token arrived
    total_ms          INTEGER NOT NULL,
    outcome           TEXT NOT NULL,     -- completed | interrupted | upstream_error
    error_code        TEXT
);
CREATE INDEX usage_log_class_at ON usage_log (class_id, at_ms);
CREATE INDEX usage_log_session_at ON usage_log (session_id, at_ms);

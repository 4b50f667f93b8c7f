-- The same tables as migrations/sqlite/0004_admin_hardening.sql, integers as BIGINT.

-- Wrong dashboard passwords over all addresses (written before the check, deleted when the
-- password was right or the attempt was refused unchecked; pruned past the period).
CREATE TABLE admin_login_failures (
    id    BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL
);
CREATE INDEX admin_login_failures_at ON admin_login_failures (at_ms);

-- Dashboard sessions signed out before their cookie expires, by the cookie's nonce.
CREATE TABLE admin_revoked_sessions (
    nonce      TEXT PRIMARY KEY NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX admin_revoked_sessions_expires ON admin_revoked_sessions (expires_ms);

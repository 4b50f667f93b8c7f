-- Wrong dashboard passwords over all addresses, so the limit on them holds across replicas.
-- A row is written before the password is checked (so parallel attempts count at once) and
-- deleted again when the password was right or the attempt was refused unchecked. Rows
-- older than the limit's period are pruned as new ones arrive.
CREATE TABLE admin_login_failures (
    id    INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL           -- Unix milliseconds
);
CREATE INDEX admin_login_failures_at ON admin_login_failures (at_ms);

-- Dashboard sessions signed out before their cookie expires, by the cookie's nonce, so a
-- copied cookie stops working on every replica. Kept until the cookie's expiry, then pruned.
CREATE TABLE admin_revoked_sessions (
    nonce      TEXT PRIMARY KEY NOT NULL,
    expires_ms INTEGER NOT NULL      -- Unix milliseconds: when the cookie would have expired
);
CREATE INDEX admin_revoked_sessions_expires ON admin_revoked_sessions (expires_ms);

-- Dashboard sign-in limits per account, per address and per known browser (issue 26): each
-- wrong password keeps whom it was tried on, the address key it came from (the student
-- sign-in's key: IPv4, or the IPv6 /64) and, from a browser that signed in before, that
-- browser's device-cookie nonce. Rows are now kept 30 days, so the dashboard can tell the
-- teacher what was tried since their last visit; the limits count within their periods.
ALTER TABLE admin_login_failures ADD COLUMN account TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE admin_login_failures ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_login_failures ADD COLUMN device TEXT NOT NULL DEFAULT '';
CREATE INDEX admin_login_failures_account ON admin_login_failures (account, at_ms);
CREATE INDEX admin_login_failures_address ON admin_login_failures (address, at_ms);
CREATE INDEX admin_login_failures_device ON admin_login_failures (device, at_ms);

-- Each account's last two successful sign-ins: "since your last visit" starts at previous_ms.
CREATE TABLE admin_sign_ins (
    account     TEXT PRIMARY KEY NOT NULL,
    last_ms     INTEGER NOT NULL,        -- Unix milliseconds
    previous_ms INTEGER                  -- NULL before the second sign-in
);

-- Secrets the dashboard shows once on the page a form redirects to (a freshly rotated
-- access code, a new invitation link), kept here rather than in one replica's memory so
-- the redirect may land on any replica. The secret is sealed with a key derived from the
-- ticket in the redirect's URL, which the database never holds (only its SHA-256): the
-- table alone reveals no secret. A row is deleted when it is shown or when it expires.
CREATE TABLE one_time_secrets (
    ticket_digest TEXT PRIMARY KEY NOT NULL,
    binding       TEXT NOT NULL,           -- digest of the dashboard session it was made for
    kind          TEXT NOT NULL,           -- activity_code | invitation
    subject       TEXT NOT NULL,           -- the activity's or teacher's id
    sealed        TEXT NOT NULL,           -- base64url nonce-less ChaCha20-Poly1305 box
    expires_ms    INTEGER NOT NULL
);
CREATE INDEX one_time_secrets_expiry ON one_time_secrets (expires_ms);

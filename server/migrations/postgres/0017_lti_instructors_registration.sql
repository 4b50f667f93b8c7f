-- LTI instructors become class members: a teacher account made for an LMS instructor at
-- their first launch, keyed by the same HMAC of (issuer, sub) as lti_users (never the sub,
-- the email or an SIS id; the account's email column holds an undeliverable placeholder).
CREATE TABLE lti_teachers (
    user_digest TEXT PRIMARY KEY NOT NULL,
    teacher_id  TEXT NOT NULL UNIQUE,
    created_ms  BIGINT NOT NULL
);

-- Single-use tickets, by their SHA-256 (the browser or the LMS holds the ticket itself):
-- kind 'registration' is a Dynamic Registration URL the administrator made (subject: the
-- label, valid an hour); kind 'dashboard' hands an instructor's launch to the dashboard
-- (subject: teacher id and class id, valid two minutes). Deleted when used or expired.
CREATE TABLE lti_tickets (
    digest     TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX lti_tickets_expires ON lti_tickets (expires_ms);

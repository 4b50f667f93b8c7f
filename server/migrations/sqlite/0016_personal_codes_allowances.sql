-- Personal codes (issue 24): one code per student of a class, made from a list of names a
-- teacher pasted. Only a keyed digest of each code is stored (hmac-sha256 under a key
-- derived from AUTH_SECRET, as the dashboard's class codes), never the code. Re-issuing
-- replaces the digest and keeps the id, so the student's allowance follows them.
CREATE TABLE personal_codes (
    id          TEXT PRIMARY KEY NOT NULL,   -- p_…
    class_id    TEXT NOT NULL,
    name        TEXT NOT NULL,               -- the name the teacher pasted; the session's display name
    code_digest TEXT NOT NULL UNIQUE,        -- hmac-sha256:<key id>:<hex> of the normalised code
    created_ms  INTEGER NOT NULL,
    issued_ms   INTEGER NOT NULL,            -- when the current code was made (re-issue moves it)
    revoked_ms  INTEGER                      -- NULL: in force
);
CREATE INDEX personal_codes_class ON personal_codes (class_id);

-- The sessions signed in with a personal code, so revoking or re-issuing the code can end
-- them on every replica (through revoked_sessions). Dropped once the session has ended.
CREATE TABLE personal_code_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    code_id    TEXT NOT NULL,
    class_id   TEXT NOT NULL,
    ends_at    INTEGER NOT NULL                 -- Unix seconds: the session's longest end
);
CREATE INDEX personal_code_sessions_code ON personal_code_sessions (code_id);

-- A class's allowance per student known by identity (a personal code or an LTI launch);
-- 0: no such limit. Class-code students are not counted here (theirs stays per session).
CREATE TABLE student_allowances (
    class_id   TEXT PRIMARY KEY NOT NULL,
    per_day    INTEGER NOT NULL,
    per_week   INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Messages each known student sent per local day ('d:YYYY-MM-DD') and week ('w:' and the
-- week's Monday), in the class's time zone: one row per student and period, shared by all
-- sessions, devices and replicas. A reset deletes the student's rows.
CREATE TABLE student_usage (
    class_id TEXT NOT NULL,
    student  TEXT NOT NULL,                   -- code:<personal code id> | lti:<user digest>
    period   TEXT NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (class_id, student, period)
);

-- Safety flags, the people told about them, per-class help resources, and the outbox of
-- alert notifications (issue 23, items 3 and 4). No foreign keys, as elsewhere.

-- A student message that a phrase list or the safety model flagged. Written before anyone
-- is told; a dismissed flag stays, with who dismissed it and when.
CREATE TABLE safety_flags (
    id              TEXT PRIMARY KEY NOT NULL,
    class_id        TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    category        TEXT NOT NULL,          -- 'self_harm' | 'violence' | 'abuse'
    source          TEXT NOT NULL,          -- 'phrase' | 'model'
    detail          TEXT NOT NULL,          -- the list entry's id, or the model's codes (S11): never message text
    exchange        TEXT,                   -- the flagged exchange, sealed (encrypted); NULL when it could not be sealed
    created_ms      INTEGER NOT NULL,
    dismissed_ms    INTEGER,                -- NULL: open
    dismissed_by    TEXT
);
CREATE INDEX safety_flags_class ON safety_flags (class_id, created_ms);
CREATE INDEX safety_flags_created ON safety_flags (created_ms);

-- The teachers a class's owner named to be told about its flags.
CREATE TABLE safety_contacts (
    class_id   TEXT NOT NULL,
    teacher_id TEXT NOT NULL,
    added_ms   INTEGER NOT NULL,
    PRIMARY KEY (class_id, teacher_id)
);
CREATE INDEX safety_contacts_teacher ON safety_contacts (teacher_id);

-- A class's own help resources, shown below a flagged reply instead of the server's.
CREATE TABLE safety_help (
    class_id   TEXT PRIMARY KEY NOT NULL,
    help       TEXT NOT NULL,               -- one resource per line
    updated_ms INTEGER NOT NULL
);

-- Notifications to send: one row per flag and channel (an email to one address, or the
-- webhook), written in the flag's transaction. A row is claimed (claimed_until_ms) while
-- one replica sends it, retried with back-off (next_at_ms), and kept once sent.
CREATE TABLE alert_outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    flag_id          TEXT NOT NULL,
    channel          TEXT NOT NULL,         -- 'email' | 'webhook'
    recipient        TEXT NOT NULL,         -- the address, or 'webhook'
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at_ms       INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    sent_ms          INTEGER,               -- NULL: pending
    last_error       TEXT,
    created_ms       INTEGER NOT NULL
);
CREATE INDEX alert_outbox_due ON alert_outbox (sent_ms, next_at_ms);
CREATE INDEX alert_outbox_flag ON alert_outbox (flag_id);

-- Teachers, their classes and activities, personal access tokens, and where each audit
-- line came from. No foreign keys: `migrate-db` copies table by table, and the store
-- deletes a class's members and activities with the class, in one transaction.

-- Teachers the administrator invited. A teacher without a password has not accepted the
-- invitation yet; a disabled one can no longer use any token.
CREATE TABLE teachers (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,    -- lower-cased
    name          TEXT NOT NULL,
    password_hash TEXT,                    -- argon2 PHC string; NULL until the invitation is accepted
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);

-- Single-use invitations, by the SHA-256 of the secret in the link (never the secret).
CREATE TABLE invitations (
    digest     TEXT PRIMARY KEY NOT NULL,
    teacher_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER                     -- NULL: not used yet
);
CREATE INDEX invitations_teacher ON invitations (teacher_id);

-- Personal access tokens (`cc_pat_…`), by the SHA-256 of the token (never the token).
CREATE TABLE access_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    digest       TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,            -- the token's first characters, to recognise it in a list
    name         TEXT NOT NULL,
    teacher_id   TEXT,                     -- NULL: an administrator's token
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER,
    revoked_ms   INTEGER                   -- NULL: in force
);
CREATE INDEX access_tokens_teacher ON access_tokens (teacher_id);

-- Classes made through the API or the dashboard (the classes file's stay in the file).
CREATE TABLE classes (
    id                        TEXT PRIMARY KEY NOT NULL,
    title                     TEXT NOT NULL,
    greeting                  TEXT,
    system_prompt             TEXT,
    starters                  TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    model                     TEXT,                        -- NULL: OPEN_WEBUI_MODEL
    time_zone                 TEXT,                        -- IANA name; NULL: TIMEZONE
    messages_per_minute       INTEGER,                     -- per student; NULL: the server's
    class_messages_per_minute INTEGER,                     -- NULL: the server's
    daily_quota               INTEGER,                     -- NULL: the server's
    token_ttl_secs            INTEGER,                     -- NULL: TOKEN_TTL
    created_ms                INTEGER NOT NULL,
    updated_ms                INTEGER NOT NULL
);

-- Who teaches a class, and as what.
CREATE TABLE class_members (
    class_id   TEXT NOT NULL,
    teacher_id TEXT NOT NULL,
    role       TEXT NOT NULL,              -- 'owner' | 'co_teacher' | 'assistant'
    added_ms   INTEGER NOT NULL,
    PRIMARY KEY (class_id, teacher_id)
);
CREATE INDEX class_members_teacher ON class_members (teacher_id);

-- A class's activities: each its own access code and, where set, its own prompt,
-- greeting, starters and model (NULL: the class's).
CREATE TABLE activities (
    id              TEXT PRIMARY KEY NOT NULL,
    class_id        TEXT NOT NULL,
    title           TEXT NOT NULL,
    greeting        TEXT,
    system_prompt   TEXT,
    starters        TEXT,                  -- JSON array, or NULL: the class's
    model           TEXT,
    code_digest     TEXT NOT NULL,         -- keyed digest (hmac-sha256:<key id>:<hex>), never the code
    code_generation INTEGER NOT NULL DEFAULT 0,  -- moves forward on every rotation
    paused          INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX activities_class ON activities (class_id);

-- The client address an audited change came from (NULL for older lines and the server's own).
ALTER TABLE admin_audit ADD COLUMN address TEXT;

-- Conversation visibility per class (issue 23): `off` stores no message text, `flagged`
-- keeps a flagged exchange and its context, `full` keeps every exchange. Exchanges are
-- sealed (XChaCha20-Poly1305 under a key derived from AUTH_SECRET, see server/src/sealed.rs)
-- and every reading of one is logged.

-- 'off' | 'flagged' | 'full' (classes made through the API; the classes file has its own).
ALTER TABLE classes ADD COLUMN visibility TEXT NOT NULL DEFAULT 'off';

-- One exchange (a student's message and the assistant's reply) of a class whose visibility
-- kept it. `sealed` is base64 of the sealed JSON {"student", "reply", "outcome"}; the key is
-- bound to the row's id, class, session and conversation, so it cannot be moved to another.
CREATE TABLE conversation_exchanges (
    id              TEXT PRIMARY KEY NOT NULL,
    class_id        TEXT NOT NULL,
    activity_id     TEXT,
    session_id      TEXT NOT NULL,
    display_name    TEXT,
    conversation_id TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    kept            TEXT NOT NULL,
    sealed          TEXT NOT NULL
);
CREATE INDEX conversation_exchanges_class ON conversation_exchanges (class_id, at_ms);
CREATE INDEX conversation_exchanges_conversation ON conversation_exchanges (class_id, session_id, conversation_id, at_ms);
CREATE INDEX conversation_exchanges_at ON conversation_exchanges (at_ms);

-- Every opening of a stored conversation: who read whose, when, from where.
CREATE TABLE conversation_reads (
    id              BIGSERIAL PRIMARY KEY,
    at_ms           BIGINT NOT NULL,
    reader          TEXT NOT NULL,
    class_id        TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    display_name    TEXT,
    conversation_id TEXT NOT NULL,
    address         TEXT
);
CREATE INDEX conversation_reads_class ON conversation_reads (class_id, id);

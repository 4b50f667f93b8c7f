-- Conversation visibility per class (issue 23): `off` stores no message text, `flagged`
-- keeps a flagged exchange and its context, `full` keeps every exchange. Exchanges are
-- sealed (XChaCha20-Poly1305 under a key derived from AUTH_SECRET, see server/src/sealed.rs)
-- and every reading of one is logged.

-- 'off' | 'flagged' | 'full' (classes made through the API; the classes file has its own).
ALTER TABLE classes ADD COLUMN visibility TEXT NOT NULL DEFAULT 'off';

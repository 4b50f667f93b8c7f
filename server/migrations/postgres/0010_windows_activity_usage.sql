-- Access windows of classes made in the store: weekly periods in the class's time zone
-- (JSON: [{"days": ["mon", …], "start": "08:00", "end": "16:30"}, …]; '[]': none) and the
-- course's first and last days (YYYY-MM-DD; NULL: no bound). No windows: always open.
ALTER TABLE classes ADD COLUMN access_windows TEXT NOT NULL DEFAULT '[]';
ALTER TABLE classes ADD COLUMN course_start TEXT;
ALTER TABLE classes ADD COLUMN course_end TEXT;

-- The activity a chat request was made in (NULL: signed in with the class's own code, and
-- every row written before activities were recorded). Read by class (usage_log_class_at).
ALTER TABLE usage_log ADD COLUMN activity_id TEXT;

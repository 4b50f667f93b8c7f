-- Budgets every replica spends from, and the class generations that make a rotated code's
-- tokens stay dead. Times are the database's clock (clock_timestamp), so replicas whose
-- clocks disagree still share one budget.

-- One GCRA budget per key: the "theoretical arrival time" of the key's next event.
-- Every message rewrites its session's and class's rows, so tat_ms has no index (an index
-- on it would stop PostgreSQL updating the rows in place) and pages keep room for the new
-- versions; housekeeping's scan of this small table does without.
CREATE TABLE rate_budgets (
    key    TEXT PRIMARY KEY NOT NULL,
    tat_ms BIGINT NOT NULL
) WITH (fillfactor = 70);

-- Messages per class per local day (the daily quota).
CREATE TABLE daily_messages (
    class_id TEXT NOT NULL,
    day      TEXT NOT NULL,            -- YYYY-MM-DD in TIMEZONE
    messages BIGINT NOT NULL,
    PRIMARY KEY (class_id, day)
);

-- Moves forward on every change of a class's codes (rotation, and back to the
-- configuration): it is part of every token's code fingerprint, so old tokens never
-- verify again, even when the codes themselves come back.
CREATE TABLE class_generations (
    class_id   TEXT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);

CREATE FUNCTION classchat_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
$$;

-- Decides several budgets together: each key i has room when its next event would not be
-- more than p_period_ms[i] ahead. Returns (0, 0) when every key (and the quota) has room,
-- and then, with p_count, spends one event from each; else (i, wait_ms) for the first key
-- without room, or (0, -1) for a spent quota, and spends nothing. Rows are locked in key
-- order, so concurrent messages of one class queue instead of deadlocking.
CREATE FUNCTION classchat_admit(
    p_keys TEXT[], p_interval_ms BIGINT[], p_period_ms BIGINT[], p_count BOOLEAN,
    p_quota_class TEXT, p_quota_day TEXT, p_quota BIGINT
) RETURNS TABLE (refused INT, wait_ms BIGINT) LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    n INT := coalesce(array_length(p_keys, 1), 0);
    t BIGINT;
    used BIGINT;
BEGIN
    IF p_count AND n > 0 THEN
        INSERT INTO rate_budgets (key, tat_ms)
            SELECT k, 0 FROM unnest(p_keys) AS k ORDER BY k
            ON CONFLICT (key) DO NOTHING;
        PERFORM 1 FROM rate_budgets WHERE key = ANY (p_keys) ORDER BY key FOR UPDATE;
    END IF;
    FOR i IN 1 .. n LOOP
        SELECT GREATEST(r.tat_ms, now_ms) INTO t FROM rate_budgets r WHERE r.key = p_keys[i];
        t := coalesce(t, now_ms);
        IF t + p_interval_ms[i] - now_ms > p_period_ms[i] THEN
            RETURN QUERY SELECT i, t + p_interval_ms[i] - now_ms - p_period_ms[i];
            RETURN;
        END IF;
    END LOOP;
    IF p_quota_class IS NOT NULL AND p_count THEN
        INSERT INTO daily_messages AS d (class_id, day, messages)
            VALUES (p_quota_class, p_quota_day, 1)
            ON CONFLICT (class_id, day) DO UPDATE SET messages = d.messages + 1
            WHERE d.messages < p_quota
            RETURNING d.messages INTO used;
        IF used IS NULL OR used > p_quota THEN
            RETURN QUERY SELECT 0, -1::BIGINT;
            RETURN;
        END IF;
    END IF;
    IF p_count AND n > 0 THEN
        UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms, now_ms) + v.interval_ms
            FROM unnest(p_keys, p_interval_ms) AS v (key, interval_ms)
            WHERE r.key = v.key;
    END IF;
    RETURN QUERY SELECT 0, 0::BIGINT;
END
$$;

-- Counts one event on each key even when its budget is spent (wrong codes), capped one
-- period and one interval ahead. Callers pass keys in one fixed order.
CREATE FUNCTION classchat_force(p_keys TEXT[], p_interval_ms BIGINT[], p_period_ms BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        INSERT INTO rate_budgets AS r (key, tat_ms) VALUES (p_keys[i], now_ms + p_interval_ms[i])
        ON CONFLICT (key) DO UPDATE SET tat_ms = LEAST(
            GREATEST(r.tat_ms, now_ms) + p_interval_ms[i],
            now_ms + p_period_ms[i] + p_interval_ms[i]);
    END LOOP;
END
$$;

-- A successful sign-in: spends one event of p_key (0 when it had room, else the wait in
-- ms and nothing spent) and gives one event back to p_refund_key.
CREATE FUNCTION classchat_sign_in(
    p_key TEXT, p_interval_ms BIGINT, p_period_ms BIGINT,
    p_refund_key TEXT, p_refund_interval_ms BIGINT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    t BIGINT;
BEGIN
    INSERT INTO rate_budgets (key, tat_ms) VALUES (p_key, 0) ON CONFLICT (key) DO NOTHING;
    SELECT GREATEST(tat_ms, now_ms) INTO t FROM rate_budgets WHERE key = p_key FOR UPDATE;
    IF t + p_interval_ms - now_ms > p_period_ms THEN
        RETURN t + p_interval_ms - now_ms - p_period_ms;
    END IF;
    UPDATE rate_budgets SET tat_ms = t + p_interval_ms WHERE key = p_key;
    IF p_refund_key IS NOT NULL THEN
        UPDATE rate_budgets SET tat_ms = GREATEST(tat_ms - p_refund_interval_ms, now_ms)
            WHERE key = p_refund_key;
    END IF;
    RETURN 0;
END
$$;

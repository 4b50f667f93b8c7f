-- classchat_admit also says what is left after a message, so the widget can show it
-- without a second round trip: fill_ms[i] is how far key i's budget now runs ahead of the
-- clock (its period minus fill_ms is the room left), used is the class's messages today
-- (NULL without a quota). Otherwise as in 0003_shared_limits.sql. Adding output columns
-- needs a new function; callers select their columns by name, so older replicas keep working.
DROP FUNCTION classchat_admit(TEXT[], BIGINT[], BIGINT[], BOOLEAN, TEXT, TEXT, BIGINT);

CREATE FUNCTION classchat_admit(
    p_keys TEXT[], p_interval_ms BIGINT[], p_period_ms BIGINT[], p_count BOOLEAN,
    p_quota_class TEXT, p_quota_day TEXT, p_quota BIGINT
) RETURNS TABLE (refused INT, wait_ms BIGINT, fill_ms BIGINT[], used BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    n INT := coalesce(array_length(p_keys, 1), 0);
    t BIGINT;
    fills BIGINT[] := ARRAY[]::BIGINT[];
    spent BIGINT;
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
            RETURN QUERY SELECT i, t + p_interval_ms[i] - now_ms - p_period_ms[i],
                NULL::BIGINT[], NULL::BIGINT;
            RETURN;
        END IF;
        fills := fills || (t + p_interval_ms[i] - now_ms);
    END LOOP;
    IF p_quota_class IS NOT NULL AND p_count THEN
        INSERT INTO daily_messages AS d (class_id, day, messages)
            VALUES (p_quota_class, p_quota_day, 1)
            ON CONFLICT (class_id, day) DO UPDATE SET messages = d.messages + 1
            WHERE d.messages < p_quota
            RETURNING d.messages INTO spent;
        IF spent IS NULL OR spent > p_quota THEN
            RETURN QUERY SELECT 0, -1::BIGINT, NULL::BIGINT[], NULL::BIGINT;
            RETURN;
        END IF;
    END IF;
    IF p_count AND n > 0 THEN
        UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms, now_ms) + v.interval_ms
            FROM unnest(p_keys, p_interval_ms) AS v (key, interval_ms)
            WHERE r.key = v.key;
    END IF;
    RETURN QUERY SELECT 0, 0::BIGINT, fills, spent;
END
$$;

-- Sign-in attempts are counted before their code is checked. Before, a replica read the
-- wrong-code budgets, checked the code and only then counted the failure, in another round
-- trip: a burst of parallel guesses from one address all passed the read before any was
-- counted (200 at once were evaluated up to 156 times where 15 should be).

-- Spends one event from each of the first p_spend keys and checks the others have room,
-- all or none: (0, 0) when every key has room, else (i, wait_ms) for the first key without
-- and nothing spent. The spent keys' rows are locked in key order, so parallel attempts
-- from one address queue on them and each sees the ones before it.
CREATE FUNCTION classchat_attempt(
    p_keys TEXT[], p_interval_ms BIGINT[], p_period_ms BIGINT[], p_spend INT
) RETURNS TABLE (refused INT, wait_ms BIGINT) LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    n INT := coalesce(array_length(p_keys, 1), 0);
    spent TEXT[] := p_keys[1:LEAST(p_spend, n)];
    t BIGINT;
BEGIN
    IF p_spend > 0 AND n > 0 THEN
        INSERT INTO rate_budgets (key, tat_ms)
            SELECT k, 0 FROM unnest(spent) AS k ORDER BY k
            ON CONFLICT (key) DO NOTHING;
        PERFORM 1 FROM rate_budgets WHERE key = ANY (spent) ORDER BY key FOR UPDATE;
    END IF;
    FOR i IN 1 .. n LOOP
        SELECT GREATEST(r.tat_ms, now_ms) INTO t FROM rate_budgets r WHERE r.key = p_keys[i];
        t := coalesce(t, now_ms);
        IF t + p_interval_ms[i] - now_ms > p_period_ms[i] THEN
            RETURN QUERY SELECT i, t + p_interval_ms[i] - now_ms - p_period_ms[i];
            RETURN;
        END IF;
    END LOOP;
    IF p_spend > 0 AND n > 0 THEN
        UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms, now_ms) + v.interval_ms
            FROM unnest(p_keys[1:LEAST(p_spend, n)], p_interval_ms[1:LEAST(p_spend, n)])
                AS v (key, interval_ms)
            WHERE r.key = v.key;
    END IF;
    RETURN QUERY SELECT 0, 0::BIGINT;
END
$$;

-- A right code: gives p_refund_ms[i] back to p_refund_keys[i] (never past a whole budget),
-- then, if p_key is given, spends one event of it: 0 when it had room, else the wait in ms
-- and nothing spent there.
CREATE FUNCTION classchat_right_code(
    p_key TEXT, p_interval_ms BIGINT, p_period_ms BIGINT,
    p_refund_keys TEXT[], p_refund_ms BIGINT[]
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    t BIGINT;
BEGIN
    -- In key order, as classchat_attempt locks them: the two never deadlock.
    PERFORM 1 FROM rate_budgets WHERE key = ANY (p_refund_keys) ORDER BY key FOR UPDATE;
    UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms - v.back_ms, now_ms)
        FROM unnest(p_refund_keys, p_refund_ms) AS v (key, back_ms)
        WHERE r.key = v.key;
    IF p_key IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO rate_budgets (key, tat_ms) VALUES (p_key, 0) ON CONFLICT (key) DO NOTHING;
    SELECT GREATEST(tat_ms, now_ms) INTO t FROM rate_budgets WHERE key = p_key FOR UPDATE;
    IF t + p_interval_ms - now_ms > p_period_ms THEN
        RETURN t + p_interval_ms - now_ms - p_period_ms;
    END IF;
    UPDATE rate_budgets SET tat_ms = t + p_interval_ms WHERE key = p_key;
    RETURN 0;
END
$$;

-- Budget leases: a replica takes a slice of a message budget (a session's or a class's rate,
-- a class's daily quota) in one statement, spends it in memory, and returns what it did not
-- spend; a message then costs a round trip only when its replica's slice is empty. See
-- crate::limits for the design and its bounds.
--
-- A granted slice is spent in the budget at once (rate_budgets.tat_ms moves on by the whole
-- slice, daily_messages.messages grows by it), so what every replica admits stays within
-- the same GCRA and quota as before. Each slice of more than one event has a row here
-- until its replica returns it with the count it did not spend (given back to the budget);
-- a row past expires_ms was never returned (its replica died or lost the database) and is
-- given back by whoever next finds it, with `unused` as recorded at the grant (every event
-- but the one the granting message spent).
--
-- Passing state, like rate_budgets: UNLOGGED (no WAL per lease; after a crash of PostgreSQL
-- the table is empty, which only means the slices out then stay spent).
CREATE UNLOGGED TABLE budget_leases (
    id          BIGSERIAL PRIMARY KEY,
    key         TEXT NOT NULL,     -- a rate_budgets key, or a class id (with day) for its quota
    day         TEXT,              -- the quota's day (YYYY-MM-DD); NULL for a rate
    interval_us BIGINT NOT NULL,   -- a rate's interval in microseconds; 0 for a quota
    unused      BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX budget_leases_expiry ON budget_leases (expires_ms);
CREATE INDEX budget_leases_key ON budget_leases (key);

-- Gives back the slices of `p_keys`' leases that expired unreturned (a quota's only for
-- p_day, unless NULL: the caller holds that day's row only). The caller holds the
-- budget rows of those keys (locked in key order); lease rows are taken SKIP LOCKED, so no
-- statement ever waits on a lease row while holding a budget row (no lock cycle).
CREATE FUNCTION classchat_reclaim_leases(p_keys TEXT[], p_day TEXT, p_now_ms BIGINT)
RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        DELETE FROM budget_leases l WHERE l.id IN (
            SELECT x.id FROM budget_leases x
            WHERE x.key = ANY (p_keys) AND x.expires_ms < p_now_ms
                AND (p_day IS NULL OR x.day IS NULL OR x.day = p_day)
            FOR UPDATE SKIP LOCKED)
        RETURNING l.key, l.day, l.interval_us, l.unused
    ), rates AS (
        UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms - g.back_ms, p_now_ms)
        FROM (SELECT key, floor(sum(interval_us * unused) / 1000) AS back_ms FROM gone
              WHERE day IS NULL GROUP BY key) g
        WHERE r.key = g.key
        RETURNING 1
    )
    UPDATE daily_messages d SET messages = GREATEST(d.messages - g.back, 0)
    FROM (SELECT key, day, sum(unused) AS back FROM gone
          WHERE day IS NOT NULL GROUP BY key, day) g
    WHERE d.class_id = g.key AND d.day = g.day;
END
$$;

-- Takes a lease on each rate key i (p_period_ms[i] as in classchat_admit; the interval in
-- microseconds, p_interval_us[i]: a budget over 60,000 a minute has one under a millisecond)
-- and, with p_quota_class, on the class's quota for p_quota_day: all or nothing. Each grant
-- is at least p_need[i] (the messages waiting at the replica) when that much room is left,
-- up to p_want[i] while more than p_reserve[i] would remain after it, and at least 1.
-- refused: 0 granted; i for the first rate key without room for one (wait_ms: until there
-- is); -1 for a spent quota. granted[i], fill_ms[i] (how far key i's budget runs ahead of
-- the clock after the grant) and lease_ids[i] (0 for a grant of one, which the granting
-- message spends at once) per rate key; quota_granted, quota_lease and used (the class's
-- count for the day after the grant) for the quota. p_ret_ids/p_ret_unused: this replica's
-- finished leases of these same budgets, returned first (see classchat_return_leases).
CREATE FUNCTION classchat_lease(
    p_keys TEXT[], p_interval_us BIGINT[], p_period_ms BIGINT[],
    p_need BIGINT[], p_want BIGINT[], p_reserve BIGINT[],
    p_quota_class TEXT, p_quota_day TEXT, p_quota BIGINT,
    p_quota_need BIGINT, p_quota_want BIGINT, p_quota_reserve BIGINT,
    p_lease_ms BIGINT, p_ret_ids BIGINT[], p_ret_unused BIGINT[]
) RETURNS TABLE (
    refused INT, wait_ms BIGINT, granted BIGINT[], fill_ms BIGINT[], lease_ids BIGINT[],
    quota_granted BIGINT, quota_lease BIGINT, used BIGINT
) LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    n INT := coalesce(array_length(p_keys, 1), 0);
    t BIGINT;
    room BIGINT;
    g BIGINT;
    grants BIGINT[] := ARRAY[]::BIGINT[];
    starts BIGINT[] := ARRAY[]::BIGINT[];
    fills BIGINT[] := ARRAY[]::BIGINT[];
    ids BIGINT[] := ARRAY[]::BIGINT[];
    lid BIGINT;
    q_used BIGINT;
    q_g BIGINT;
    q_id BIGINT := 0;
BEGIN
    IF n > 0 THEN
        INSERT INTO rate_budgets (key, tat_ms)
            SELECT k, 0 FROM unnest(p_keys) AS k ORDER BY k
            ON CONFLICT (key) DO NOTHING;
        PERFORM 1 FROM rate_budgets WHERE key = ANY (p_keys) ORDER BY key FOR UPDATE;
    END IF;
    IF p_quota_class IS NOT NULL THEN
        INSERT INTO daily_messages (class_id, day, messages)
            VALUES (p_quota_class, p_quota_day, 0)
            ON CONFLICT (class_id, day) DO NOTHING;
        PERFORM 1 FROM daily_messages
            WHERE class_id = p_quota_class AND day = p_quota_day FOR UPDATE;
    END IF;
    -- The replica's own finished slices of these budgets come back with the take (so it
    -- never has more than one slice of a budget unreturned), ...
    IF cardinality(p_ret_ids) > 0 THEN
        WITH mine AS (
            SELECT * FROM unnest(p_ret_ids, p_ret_unused) AS v (id, unused)
        ), gone AS (
            DELETE FROM budget_leases l WHERE l.id IN (
                SELECT x.id FROM budget_leases x
                WHERE x.id = ANY (p_ret_ids)
                    AND (x.key = ANY (p_keys) AND x.day IS NULL
                         OR x.key = p_quota_class AND x.day = p_quota_day)
                FOR UPDATE SKIP LOCKED)
            RETURNING l.id, l.key, l.day, l.interval_us
        ), back AS (
            SELECT g.key, g.day, floor(sum(m.unused * g.interval_us) / 1000) AS back_ms,
                sum(m.unused) AS n
            FROM mine m JOIN gone g ON g.id = m.id GROUP BY g.key, g.day
        ), rates AS (
            UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms - b.back_ms, now_ms)
            FROM back b WHERE b.day IS NULL AND r.key = b.key
            RETURNING 1
        )
        UPDATE daily_messages d SET messages = GREATEST(d.messages - b.n, 0)
        FROM back b
        WHERE b.day IS NOT NULL AND d.class_id = b.key AND d.day = b.day;
    END IF;
    -- ... and slices whose replica never came back (cheap when there are none).
    PERFORM classchat_reclaim_leases(
        CASE WHEN p_quota_class IS NULL THEN p_keys ELSE p_keys || p_quota_class END,
        p_quota_day, now_ms);
    FOR i IN 1 .. n LOOP
        SELECT GREATEST(r.tat_ms, now_ms) INTO t FROM rate_budgets r WHERE r.key = p_keys[i];
        room := (p_period_ms[i] - (t - now_ms)) * 1000 / GREATEST(p_interval_us[i], 1);
        IF room < 1 THEN
            RETURN QUERY SELECT i, t + (p_interval_us[i] + 999) / 1000 - now_ms - p_period_ms[i],
                NULL::BIGINT[], NULL::BIGINT[], NULL::BIGINT[], NULL::BIGINT, NULL::BIGINT,
                NULL::BIGINT;
            RETURN;
        END IF;
        g := GREATEST(1, LEAST(room, GREATEST(p_need[i], LEAST(p_want[i], room - p_reserve[i]))));
        grants := grants || g;
        starts := starts || t;
    END LOOP;
    IF p_quota_class IS NOT NULL THEN
        SELECT d.messages INTO q_used FROM daily_messages d
            WHERE d.class_id = p_quota_class AND d.day = p_quota_day;
        room := p_quota - q_used;
        IF room < 1 THEN
            RETURN QUERY SELECT -1, -1::BIGINT, NULL::BIGINT[], NULL::BIGINT[],
                NULL::BIGINT[], NULL::BIGINT, NULL::BIGINT, q_used;
            RETURN;
        END IF;
        q_g := GREATEST(1, LEAST(room, GREATEST(p_quota_need,
            LEAST(p_quota_want, room - p_quota_reserve))));
        UPDATE daily_messages SET messages = messages + q_g
            WHERE class_id = p_quota_class AND day = p_quota_day;
        q_used := q_used + q_g;
        IF q_g > 1 THEN
            INSERT INTO budget_leases (key, day, interval_us, unused, expires_ms)
                VALUES (p_quota_class, p_quota_day, 0, q_g - 1, now_ms + p_lease_ms)
                RETURNING id INTO q_id;
        END IF;
    END IF;
    FOR i IN 1 .. n LOOP
        -- A grant's time is rounded up to the millisecond: never less than it spent.
        UPDATE rate_budgets SET tat_ms = starts[i] + (grants[i] * p_interval_us[i] + 999) / 1000
            WHERE key = p_keys[i];
        fills := fills || (starts[i] + (grants[i] * p_interval_us[i] + 999) / 1000 - now_ms);
        lid := 0;
        IF grants[i] > 1 THEN
            INSERT INTO budget_leases (key, day, interval_us, unused, expires_ms)
                VALUES (p_keys[i], NULL, p_interval_us[i], grants[i] - 1, now_ms + p_lease_ms)
                RETURNING id INTO lid;
        END IF;
        ids := ids || lid;
    END LOOP;
    RETURN QUERY SELECT 0, 0::BIGINT, grants, fills, ids, q_g, q_id, q_used;
END
$$;

-- A replica returns leases: lease p_ids[i] (on rate key p_keys[i], or on class p_keys[i]'s
-- quota for day p_days[i]) left p_unused[i] events unspent, given back to the budget. A
-- lease already reclaimed (returned after it expired) gives nothing back twice. Also gives
-- back up to 100 leases anywhere that expired unreturned, so a dead replica's slices come
-- back even on keys no one leases again.
CREATE FUNCTION classchat_return_leases(
    p_ids BIGINT[], p_keys TEXT[], p_days TEXT[], p_unused BIGINT[]
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := classchat_now_ms();
    stale TEXT[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT key), ARRAY[]::TEXT[]) INTO stale FROM (
        SELECT key FROM budget_leases WHERE expires_ms < now_ms LIMIT 100) s;
    -- Budget rows first, in key order (as classchat_lease takes them), then lease rows.
    PERFORM 1 FROM rate_budgets WHERE key = ANY (p_keys || stale) ORDER BY key FOR UPDATE;
    PERFORM 1 FROM daily_messages WHERE class_id = ANY (p_keys || stale)
        ORDER BY class_id, day FOR UPDATE;
    WITH mine AS (
        SELECT * FROM unnest(p_ids, p_keys, p_days, p_unused) AS v (id, key, day, unused)
    ), gone AS (
        DELETE FROM budget_leases l WHERE l.id IN (
            SELECT x.id FROM budget_leases x WHERE x.id = ANY (p_ids) FOR UPDATE SKIP LOCKED)
        RETURNING l.id, l.interval_us
    ), back AS (
        SELECT m.key, m.day, floor(sum(m.unused * g.interval_us) / 1000) AS back_ms,
            sum(m.unused) AS n
        FROM mine m JOIN gone g ON g.id = m.id GROUP BY m.key, m.day
    ), rates AS (
        UPDATE rate_budgets r SET tat_ms = GREATEST(r.tat_ms - b.back_ms, now_ms)
        FROM back b WHERE b.day IS NULL AND r.key = b.key
        RETURNING 1
    )
    UPDATE daily_messages d SET messages = GREATEST(d.messages - b.n, 0)
    FROM back b
    WHERE b.day IS NOT NULL AND d.class_id = b.key AND d.day = b.day;
    IF cardinality(stale) > 0 THEN
        PERFORM classchat_reclaim_leases(stale, NULL, now_ms);
    END IF;
END
$$;

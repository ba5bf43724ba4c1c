-- Behavioural analytics in SQL: ClickHouse's windowFunnel, retention, sequenceMatch and
-- sequenceCount as parallel-safe aggregates over cdp.events or any table, and two reports built
-- on them (funnel_report, paths). See README "Behavioural analytics" for the semantics.

-- ---- support functions of the row aggregates (state: the group's rows, kept compactly) ----------
CREATE FUNCTION cdp_internal.rows_combine(internal, internal) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_rows_combine';
CREATE FUNCTION cdp_internal.rows_serialize(internal) RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_rows_serialize';
CREATE FUNCTION cdp_internal.rows_deserialize(bytea, internal) RETURNS internal
LANGUAGE C STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_rows_deserialize';
CREATE FUNCTION cdp_internal.funnel_final(internal) RETURNS integer
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_funnel_final';
CREATE FUNCTION cdp_internal.funnel_times_final(internal) RETURNS interval[]
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_funnel_times_final';
CREATE FUNCTION cdp_internal.sequence_match_final(internal) RETURNS boolean
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_sequence_match_final';
CREATE FUNCTION cdp_internal.sequence_count_final(internal) RETURNS bigint
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_sequence_count_final';

-- ---- window funnel ----------------------------------------------------------------------------
CREATE FUNCTION cdp_internal.funnel_trans(internal, interval, timestamptz, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_funnel_trans';
CREATE FUNCTION cdp_internal.funnel_trans(internal, interval, text, timestamptz, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_funnel_trans';
CREATE FUNCTION cdp_internal.funnel_trans(internal, interval, text, timestamptz, timestamptz, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_funnel_trans';
CREATE FUNCTION cdp_internal.funnel_trans(internal, interval, text, timestamptz, bigint, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_funnel_trans';
CREATE AGGREGATE cdp.window_funnel("window" interval, ts timestamptz, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel(interval, timestamptz, VARIADIC boolean[]) IS
    'How many funnel steps were reached in order within the window (ClickHouse windowFunnel)';
CREATE AGGREGATE cdp.window_funnel("window" interval, mode text, ts timestamptz, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel(interval, text, timestamptz, VARIADIC boolean[]) IS
    'How many funnel steps were reached in order within the window (ClickHouse windowFunnel)';
CREATE AGGREGATE cdp.window_funnel("window" interval, mode text, ts timestamptz, tie timestamptz, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel(interval, text, timestamptz, timestamptz, VARIADIC boolean[]) IS
    'How many funnel steps were reached in order within the window (ClickHouse windowFunnel)';
CREATE AGGREGATE cdp.window_funnel("window" interval, mode text, ts timestamptz, tie bigint, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel(interval, text, timestamptz, bigint, VARIADIC boolean[]) IS
    'How many funnel steps were reached in order within the window (ClickHouse windowFunnel)';
CREATE AGGREGATE cdp.window_funnel_times("window" interval, ts timestamptz, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_times_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel_times(interval, timestamptz, VARIADIC boolean[]) IS
    'For each funnel step reached: the time from the first step to it';
CREATE AGGREGATE cdp.window_funnel_times("window" interval, mode text, ts timestamptz, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_times_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel_times(interval, text, timestamptz, VARIADIC boolean[]) IS
    'For each funnel step reached: the time from the first step to it';
CREATE AGGREGATE cdp.window_funnel_times("window" interval, mode text, ts timestamptz, tie timestamptz, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_times_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel_times(interval, text, timestamptz, timestamptz, VARIADIC boolean[]) IS
    'For each funnel step reached: the time from the first step to it';
CREATE AGGREGATE cdp.window_funnel_times("window" interval, mode text, ts timestamptz, tie bigint, VARIADIC steps boolean[]) (
    SFUNC = cdp_internal.funnel_trans, STYPE = internal, FINALFUNC = cdp_internal.funnel_times_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.window_funnel_times(interval, text, timestamptz, bigint, VARIADIC boolean[]) IS
    'For each funnel step reached: the time from the first step to it';

-- ---- sequences ------------------------------------------------------------------------------
CREATE FUNCTION cdp_internal.sequence_trans(internal, text, timestamptz, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_sequence_trans';
CREATE FUNCTION cdp_internal.sequence_trans(internal, text, timestamptz, timestamptz, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_sequence_trans';
CREATE FUNCTION cdp_internal.sequence_trans(internal, text, timestamptz, bigint, boolean[]) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_sequence_trans';
CREATE AGGREGATE cdp.sequence_match(pattern text, ts timestamptz, VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.sequence_trans, STYPE = internal, FINALFUNC = cdp_internal.sequence_match_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.sequence_match(text, timestamptz, VARIADIC boolean[]) IS
    'Whether the rows hold the pattern of conditions (ClickHouse sequenceMatch)';
CREATE AGGREGATE cdp.sequence_match(pattern text, ts timestamptz, tie timestamptz, VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.sequence_trans, STYPE = internal, FINALFUNC = cdp_internal.sequence_match_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.sequence_match(text, timestamptz, timestamptz, VARIADIC boolean[]) IS
    'Whether the rows hold the pattern of conditions (ClickHouse sequenceMatch)';
CREATE AGGREGATE cdp.sequence_match(pattern text, ts timestamptz, tie bigint, VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.sequence_trans, STYPE = internal, FINALFUNC = cdp_internal.sequence_match_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.sequence_match(text, timestamptz, bigint, VARIADIC boolean[]) IS
    'Whether the rows hold the pattern of conditions (ClickHouse sequenceMatch)';
CREATE AGGREGATE cdp.sequence_count(pattern text, ts timestamptz, VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.sequence_trans, STYPE = internal, FINALFUNC = cdp_internal.sequence_count_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.sequence_count(text, timestamptz, VARIADIC boolean[]) IS
    'How many non-overlapping times the rows hold the pattern (ClickHouse sequenceCount)';
CREATE AGGREGATE cdp.sequence_count(pattern text, ts timestamptz, tie timestamptz, VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.sequence_trans, STYPE = internal, FINALFUNC = cdp_internal.sequence_count_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.sequence_count(text, timestamptz, timestamptz, VARIADIC boolean[]) IS
    'How many non-overlapping times the rows hold the pattern (ClickHouse sequenceCount)';
CREATE AGGREGATE cdp.sequence_count(pattern text, ts timestamptz, tie bigint, VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.sequence_trans, STYPE = internal, FINALFUNC = cdp_internal.sequence_count_final,
    COMBINEFUNC = cdp_internal.rows_combine, SERIALFUNC = cdp_internal.rows_serialize,
    DESERIALFUNC = cdp_internal.rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.sequence_count(text, timestamptz, bigint, VARIADIC boolean[]) IS
    'How many non-overlapping times the rows hold the pattern (ClickHouse sequenceCount)';

-- ---- retention: a bitmask of the conditions seen (bits 32-39: how many there are) --------------
CREATE FUNCTION cdp_internal.retention_trans(bigint, boolean[]) RETURNS bigint
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_retention_trans';
CREATE FUNCTION cdp_internal.retention_combine(bigint, bigint) RETURNS bigint
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_retention_combine';
CREATE FUNCTION cdp_internal.retention_final(bigint) RETURNS boolean[]
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_retention_final';
CREATE AGGREGATE cdp.retention(VARIADIC conditions boolean[]) (
    SFUNC = cdp_internal.retention_trans, STYPE = bigint, INITCOND = '0',
    FINALFUNC = cdp_internal.retention_final, COMBINEFUNC = cdp_internal.retention_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.retention(VARIADIC boolean[]) IS
    'Element 1: condition 1 held in some row; element k: conditions 1 and k both held (ClickHouse retention)';

-- ---- reports ----------------------------------------------------------------------------------

-- The time bounds of a report's query over events aliased `alias`, as SQL to append to its
-- WHERE clause: only the bounds given, as parameters $first (since) and $first + 1 (until). An
-- open bound is left out rather than written as -infinity / infinity: on a table not yet
-- analysed (right after a bulk load) the planner would take such a range for 0.5% of the rows
-- and choose nested loops over the whole table.
CREATE FUNCTION cdp_internal.time_bounds(alias text, since timestamptz, until timestamptz, first integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN since IS NULL THEN '' ELSE format(' AND %I."timestamp" >= $%s', alias, first) END
    || CASE WHEN until IS NULL THEN '' ELSE format(' AND %I."timestamp" < $%s', alias, first + 1) END;

-- The person an event belongs to: its current profile (see cdp.events_by_profile: it follows
-- merges, so a visitor's anonymous events before a login count with the same person's later
-- ones), else its user or anonymous id.
CREATE FUNCTION cdp_internal.person_of(profile_id bigint, user_id text, anonymous_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce('p:' || profile_id, 'u:' || user_id, 'a:' || anonymous_id);

-- A funnel over the events named in `steps` (a track event's name, or a page or screen name),
-- per person (across devices, as identity resolution joined them): how many reached each step, the conversion from the step before and from the first,
-- and the median time from the first step. With a breakdown column of cdp.events, each value is
-- its own funnel over the events carrying it.
CREATE FUNCTION cdp.funnel_report(steps text[], "window" interval, since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL, breakdown text DEFAULT NULL, mode text DEFAULT '',
    workspace_id integer DEFAULT 1)
RETURNS TABLE (breakdown_value text, step integer, step_name text, users bigint,
               conversion_from_previous numeric, conversion_from_first numeric, median_time_to_convert interval)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := coalesce(cardinality(steps), 0);
    conditions text;
    grouping text := 'NULL::text';
BEGIN
    IF n < 1 OR n > 32 OR array_position(steps, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'a funnel report needs 1 to 32 steps, none of them NULL'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', coalesce(steps::text, 'NULL')),
                  HINT = 'Pass the event names in order: ARRAY[''Product Viewed'', ''Order Completed''].';
    END IF;
    IF breakdown IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'cdp.events'::regclass AND attname = breakdown
                       AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'cdp.events has no column "%"', breakdown
                USING ERRCODE = 'undefined_column', DETAIL = 'The breakdown names a column of cdp.events.',
                      HINT = 'Use a column such as utm_campaign, device_type, browser, os or referrer_medium.';
        END IF;
        grouping := format('e.%I::text', breakdown);
    END IF;
    SELECT string_agg(format('coalesce(e.event, e.name) = $1[%s]', i), ', ' ORDER BY i) INTO conditions
    FROM generate_series(1, n) i;
    RETURN QUERY EXECUTE format($q$
        WITH per_person AS (
            SELECT %1$s AS b,
                   cdp.window_funnel_times($2, $3, e."timestamp", e.received_at, VARIADIC ARRAY[%2$s]) AS t
            FROM cdp.events_by_profile e
            WHERE e.workspace_id = $4%3$s AND coalesce(e.event, e.name) = ANY ($1)
            GROUP BY cdp_internal.person_of(e.current_profile_id, e.user_id, e.anonymous_id), 1
        ), per_step AS (
            SELECT p.b, k, count(*) FILTER (WHERE cardinality(p.t) >= k) AS reached,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p.t[k]))
                       FILTER (WHERE cardinality(p.t) >= k AND k > 1) AS median_seconds
            FROM per_person p, generate_series(1, $7) k
            GROUP BY p.b, k
        )
        SELECT coalesce(s.b, '(none)'), s.k, $1[s.k], s.reached,
               round(s.reached / nullif(lag(s.reached) OVER w, 0)::numeric, 4),
               round(s.reached / nullif(first_value(s.reached) OVER w, 0)::numeric, 4),
               make_interval(secs => s.median_seconds)
        FROM per_step s
        WINDOW w AS (PARTITION BY s.b ORDER BY s.k)
        ORDER BY s.b NULLS FIRST, s.k
    $q$, grouping, conditions, cdp_internal.time_bounds('e', since, until, 5))
    USING steps, "window", mode, workspace_id, since, until, n;
END;
$$;
COMMENT ON FUNCTION cdp.funnel_report(text[], interval, timestamptz, timestamptz, text, text, integer) IS
    'Funnel chart: per step the people reaching it, conversion from the previous and first step, median time to it';

-- The most frequent paths of `depth` events after (or before) an event, within sessions:
-- '(end)' or '(start)' marks a session ending or starting inside the path.
CREATE FUNCTION cdp.paths(start_event text, direction text DEFAULT 'next', depth integer DEFAULT 1,
    top_n integer DEFAULT 10, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    workspace_id integer DEFAULT 1)
RETURNS TABLE (path text[], occurrences bigint, users bigint, share numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    frame text;
BEGIN
    IF direction IS NULL OR direction NOT IN ('next', 'previous') THEN
        RAISE EXCEPTION 'direction must be ''next'' or ''previous'''
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %L.', direction),
                  HINT = 'next: the events after start_event; previous: the events before it.';
    END IF;
    IF depth IS NULL OR depth < 1 OR depth > 20 OR top_n IS NULL OR top_n < 1 THEN
        RAISE EXCEPTION 'depth must be 1 to 20 and top_n at least 1'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got depth %s, top_n %s.', depth, top_n),
                  HINT = 'Ask for the next few events: depth => 3, top_n => 10.';
    END IF;
    frame := CASE direction WHEN 'next' THEN 'ROWS BETWEEN 1 FOLLOWING AND $3 FOLLOWING'
                            ELSE 'ROWS BETWEEN $3 PRECEDING AND 1 PRECEDING' END;
    RETURN QUERY EXECUTE format($q$
        WITH framed AS (
            SELECT cdp_internal.person_of(e.current_profile_id, e.user_id, e.anonymous_id) AS person,
                   coalesce(e.event, e.name, e.type) AS label,
                   array_agg(coalesce(e.event, e.name, e.type)) OVER (
                       PARTITION BY e.session_id ORDER BY e."timestamp", e.received_at, e.event_id %1$s) AS around
            FROM cdp.events_by_profile e
            WHERE e.workspace_id = $2%2$s
              -- only the sessions where the event happened are ordered and windowed
              AND e.session_id IN (SELECT s.session_id FROM cdp.events s
                                   WHERE s.workspace_id = $2%3$s AND coalesce(s.event, s.name, s.type) = $1)
        ), paths AS (
            SELECT f.person,
                   CASE WHEN coalesce(cardinality(f.around), 0) = $3 THEN f.around
                        WHEN $6 = 'next' THEN coalesce(f.around, '{}') || '(end)'::text
                        ELSE '(start)'::text || coalesce(f.around, '{}') END AS path
            FROM framed f WHERE f.label = $1
        )
        SELECT p.path, count(*), count(DISTINCT p.person), round(count(*) / sum(count(*)) OVER (), 4)
        FROM paths p GROUP BY p.path ORDER BY count(*) DESC, p.path COLLATE "C" LIMIT $7
    $q$, frame, cdp_internal.time_bounds('e', since, until, 4), cdp_internal.time_bounds('s', since, until, 4))
    USING start_event, workspace_id, depth, since, until, direction, top_n;
END;
$$;
COMMENT ON FUNCTION cdp.paths(text, text, integer, integer, timestamptz, timestamptz, integer) IS
    'Top paths of events after (or before) an event within sessions, with how often and by how many people';

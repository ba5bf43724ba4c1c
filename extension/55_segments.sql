-- Segments: audiences kept current. A realtime segment is a boolean expression over a profile
-- (its traits, computed traits, first and last seen), evaluated by ingest at the end of every
-- batch for the profiles the batch touched, and by cdp.tick() for profiles whose windowed traits
-- moved; a batch segment is any query returning profile ids, refreshed on demand; a trigger
-- fires on a pattern of events ("Product Added" without "Order Completed" within an hour). All
-- three write to one feed, cdp.segment_changes, that consumers read with a cursor.

CREATE SCHEMA cdp_audiences;
COMMENT ON SCHEMA cdp_audiences IS 'One view per segment: its members, for BI tools and exports';

CREATE TABLE cdp.segments (
    segment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id integer NOT NULL DEFAULT 1 REFERENCES cdp.workspaces,
    name text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('realtime', 'batch', 'trigger')),
    definition text NOT NULL,             -- realtime: an expression; batch: a SELECT; trigger: see trigger_rule
    trigger_rule jsonb,                   -- trigger: {"when": ..., "unless": ..., "within": ..., "times": ...}
    purpose text,                         -- realtime: members must have granted consent for it (cdp.consent)
    created_at timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz,
    UNIQUE (workspace_id, name)
);
COMMENT ON TABLE cdp.segments IS 'Segment and trigger definitions (cdp.create_segment, cdp.create_trigger)';
SELECT pg_catalog.pg_extension_config_dump('cdp.segments', '');
SELECT pg_catalog.pg_extension_config_dump('cdp.segments_segment_id_seq', '');

CREATE TABLE cdp.segment_members (
    workspace_id integer NOT NULL,
    segment_id bigint NOT NULL REFERENCES cdp.segments ON DELETE CASCADE,
    profile_id bigint NOT NULL,
    entered_at timestamptz NOT NULL,
    PRIMARY KEY (segment_id, profile_id)
);
-- Ingest reads a batch's profiles' memberships.
CREATE INDEX segment_members_profile_idx ON cdp.segment_members (workspace_id, profile_id);
COMMENT ON TABLE cdp.segment_members IS 'Who is in each segment now, since when';
SELECT pg_catalog.pg_extension_config_dump('cdp.segment_members', '');

-- The feed. Every writer holds the workspace's identity lock from before it takes a change_id
-- until it commits, so within a workspace change_ids are handed out in commit order: a consumer
-- that has seen change n has seen every earlier change of its workspace.
CREATE TABLE cdp.segment_changes (
    change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id integer NOT NULL,
    segment_id bigint NOT NULL,           -- kept when the segment is dropped: the feed is history
    segment text NOT NULL,                -- its name when the change happened
    profile_id bigint NOT NULL,
    change text NOT NULL CHECK (change IN ('entered', 'exited', 'fired')),
    at timestamptz NOT NULL,              -- the batch's receipt (ingest), the tick's time, or now
    cause text NOT NULL                   -- ingest, tick, created, redefined, refresh, merged, dropped, ...
);
CREATE INDEX segment_changes_workspace_idx ON cdp.segment_changes (workspace_id, change_id);
COMMENT ON TABLE cdp.segment_changes IS
    'Append-only feed of segment enters and exits and trigger firings; read it with cdp.read_changes and cdp.ack_changes';
SELECT pg_catalog.pg_extension_config_dump('cdp.segment_changes', '');
SELECT pg_catalog.pg_extension_config_dump('cdp.segment_changes_change_id_seq', '');

CREATE TABLE cdp.segment_consumers (
    workspace_id integer NOT NULL REFERENCES cdp.workspaces,
    consumer text NOT NULL,
    acked_change_id bigint NOT NULL DEFAULT 0,  -- every change up to it is done
    acked_at timestamptz,
    PRIMARY KEY (workspace_id, consumer)
);
COMMENT ON TABLE cdp.segment_consumers IS 'Where each consumer of the feed is';
SELECT pg_catalog.pg_extension_config_dump('cdp.segment_consumers', '');

-- Triggers' open occurrences: a "when" event waiting for its deadline (or its "unless"), or the
-- recent "when" events of a counting trigger.
CREATE TABLE cdp_internal.trigger_state (
    segment_id bigint NOT NULL REFERENCES cdp.segments ON DELETE CASCADE,
    profile_id bigint NOT NULL,
    event_at timestamptz NOT NULL,
    event_id text NOT NULL,
    deadline timestamptz,                 -- unless-triggers: fires then unless cancelled
    PRIMARY KEY (segment_id, profile_id, event_at, event_id)
);
CREATE INDEX trigger_state_deadline_idx ON cdp_internal.trigger_state (deadline) WHERE deadline IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.trigger_state', '');

-- A segment definition refused unless it is one expression (realtime) or one plain SELECT
-- (batch): no second statement, no FROM or clauses around an expression, no data-modifying
-- WITH, no SELECT INTO, no row locks.
CREATE FUNCTION cdp_internal.check_segment_definition(mode text, definition text) RETURNS void
LANGUAGE C STRICT IMMUTABLE AS 'MODULE_PATHNAME', 'cdp_check_segment_definition';

CREATE FUNCTION cdp_internal.check_segment_name(name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name !~ '^[a-z][a-z0-9_]{0,59}$' THEN
        RAISE EXCEPTION 'invalid segment name "%"', name USING ERRCODE = 'invalid_name',
            DETAIL = 'A segment name has 1 to 60 characters a-z, 0-9 and _, starting with a letter: it names a view in cdp_audiences.',
            HINT = 'Name it like a table: eco_fashion_browsers, abandoned_cart.';
    END IF;
END;
$$;

CREATE FUNCTION cdp_internal.segment_view(workspace integer, name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
RETURN format('cdp_audiences.%I', CASE WHEN workspace = 1 THEN name ELSE 'w' || workspace || '_' || name END);

-- The select list that makes computed.<name> columns of a profile's computed traits (p.c):
-- count and distinct_count bigint, sum numeric, min and max numeric (NULL for values that are not
-- numbers), the others text.
CREATE FUNCTION cdp_internal.computed_columns(workspace integer) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT coalesce(string_agg(format(CASE c.definition ->> 'function'
                                 WHEN 'count' THEN '(p.c ->> %1$L)::bigint AS %1$I'
                                 WHEN 'distinct_count' THEN '(p.c ->> %1$L)::bigint AS %1$I'
                                 WHEN 'sum' THEN '(p.c ->> %1$L)::numeric AS %1$I'
                                 WHEN 'min' THEN 'CASE WHEN jsonb_typeof(p.c -> %1$L) = ''number'' THEN (p.c ->> %1$L)::numeric END AS %1$I'
                                 WHEN 'max' THEN 'CASE WHEN jsonb_typeof(p.c -> %1$L) = ''number'' THEN (p.c ->> %1$L)::numeric END AS %1$I'
                                 ELSE 'p.c ->> %1$L AS %1$I' END, c.name), ', ' ORDER BY c.name), 'NULL AS no_computed_traits')
    FROM cdp.computed_traits c WHERE c.workspace_id = workspace);

-- Refuses a realtime expression that does not evaluate over a profile, naming what it may use.
CREATE FUNCTION cdp_internal.check_segment_expression(workspace integer, name text, definition text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT CASE WHEN (%s) THEN 1 END FROM (SELECT NULL::bigint AS profile_id, NULL::jsonb AS traits,'
                   ' NULL::timestamptz AS first_seen, NULL::timestamptz AS last_seen, NULL::jsonb AS c, NULL::jsonb AS consent) p'
                   ' CROSS JOIN LATERAL (SELECT %s) AS computed LIMIT 0',
                   E'\n' || definition || E'\n', cdp_internal.computed_columns(workspace));
EXCEPTION WHEN syntax_error_or_access_rule_violation OR datatype_mismatch OR undefined_function
          OR invalid_text_representation OR ambiguous_column OR undefined_column THEN
    RAISE EXCEPTION 'realtime segment "%" does not evaluate: %', name, SQLERRM USING ERRCODE = SQLSTATE,
        DETAIL = format('An expression can use profile_id, traits (jsonb), consent (jsonb), first_seen, last_seen%s.',
                        coalesce(', and computed.' || (SELECT string_agg(c.name, ', computed.' ORDER BY c.name)
                                                       FROM cdp.computed_traits c WHERE c.workspace_id = workspace), '')),
        HINT = 'Define computed traits with cdp.define_computed_trait; compare traits with traits ->> ''key''.';
END;
$$;

-- Every realtime segment of the workspace still evaluates (after computed traits changed): a
-- segment that would fail would fail every ingest.
CREATE FUNCTION cdp_internal.check_all_segments(workspace integer) RETURNS void
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT cdp_internal.check_segment_expression(s.workspace_id, s.name, s.definition)
    FROM cdp.segments s WHERE s.workspace_id = check_all_segments.workspace AND s.mode = 'realtime';
END;

-- The query ingest and cdp.tick run to evaluate a workspace's realtime segments for some
-- profiles ($1 workspace, $2 profiles, $3 time): per profile, the realtime segments it belongs
-- in now. NULL when the workspace has no realtime segment. Ingest compares that with the
-- memberships it holds and writes only the differences.
-- In an expression: profile_id, traits (jsonb), consent (jsonb: purpose -> granted),
-- first_seen, last_seen, and computed.<name> for each computed trait (count and distinct_count
-- bigint, sum, min and max numeric, others text).
CREATE FUNCTION cdp_internal.segment_query(workspace integer) RETURNS text
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tests text;
    uses_traits boolean;
    uses_computed boolean;
    uses_consent boolean;
BEGIN
    -- A profile's record and computed traits are made only when some expression reads them,
    -- and the computed columns once per profile (OFFSET 0 keeps the planner from copying them
    -- into every expression that reads one).
    SELECT string_agg(format('CASE WHEN (%s)%s THEN %s::bigint END', E'\n' || s.definition || E'\n',
                             CASE WHEN s.purpose IS NOT NULL
                                  THEN format(' AND coalesce((consent ->> %L)::boolean, false)', s.purpose) ELSE '' END,
                             s.segment_id), ', ' ORDER BY s.segment_id),
           bool_or(s.definition ~* '\mtraits\M'), bool_or(s.definition ~* '\mcomputed\M'),
           bool_or(s.definition ~* '\mconsent\M' OR s.purpose IS NOT NULL)
    INTO tests, uses_traits, uses_computed, uses_consent
    FROM cdp.segments s WHERE s.workspace_id = workspace AND s.mode = 'realtime';
    IF tests IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN format($q$
SELECT p.profile_id, array_remove(ARRAY[%s], NULL) AS segments
FROM unnest($2::bigint[]) AS ids(id)
CROSS JOIN LATERAL (
    SELECT s.profile_id, %s AS traits, s.first_seen, s.last_seen, %s AS c, %s AS consent
    FROM cdp_internal.profile_state s WHERE s.workspace_id = $1 AND s.profile_id = ids.id) AS p
CROSS JOIN LATERAL (SELECT %s OFFSET 0) AS computed
WHERE $3 IS NOT NULL$q$,
        tests,
        CASE WHEN uses_traits THEN 'coalesce(cdp_internal.traits_of(s.traits), ''{}''::jsonb)' ELSE 'NULL::jsonb' END,
        CASE WHEN uses_computed THEN 'cdp_internal.computed_of($1, s.computed, $3)' ELSE 'NULL::jsonb' END,
        CASE WHEN uses_consent THEN '(SELECT coalesce(jsonb_object_agg(g.purpose, g.granted), ''{}'') FROM cdp.consent g'
                                    ' WHERE g.workspace_id = $1 AND g.profile_id = s.profile_id)' ELSE 'NULL::jsonb' END,
        cdp_internal.computed_columns(workspace));
END;
$$;

-- Moves realtime segments to `at` for some profiles, as ingest does (cause: why).
CREATE FUNCTION cdp_internal.evaluate_segments(workspace integer, profiles bigint[], at timestamptz, cause text)
RETURNS bigint
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cdp_evaluate_segments';

-- Profiles merged into others leave their segments (the survivor is evaluated as itself).
CREATE FUNCTION cdp_internal.exit_absorbed(workspace integer, absorbed bigint[], at timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
WITH gone AS (
    DELETE FROM cdp.segment_members m WHERE m.workspace_id = workspace AND m.profile_id = ANY (absorbed)
    RETURNING m.segment_id, m.profile_id),
logged AS (
    INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
    SELECT workspace, g.segment_id, s.name, g.profile_id, 'exited', at, 'merged'
    FROM gone g JOIN cdp.segments s USING (segment_id) ORDER BY g.profile_id, g.segment_id
    RETURNING 1)
SELECT count(*) FROM logged;
$$;

-- A time as feed causes write it: ISO 8601 in UTC, whatever the session's settings.
CREATE FUNCTION cdp_internal.iso(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');

-- Changes are announced on the channel cdp_segment_changes with the payload
-- {"workspace_id": N}, once per transaction and workspace however many it wrote (PostgreSQL
-- folds equal notifications of a transaction into one), after commit: listeners then read the
-- feed. A row trigger costs nothing for the batches that change nothing, which are most.
CREATE FUNCTION cdp_internal.announce_change() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'cdp_announce_change';
CREATE TRIGGER segment_changes_announce AFTER INSERT ON cdp.segment_changes
    FOR EACH ROW EXECUTE FUNCTION cdp_internal.announce_change();

-- Profiles merged into others: they leave their segments, and their open trigger occurrences
-- go to their survivors (one open occurrence per trigger and person: the earliest). PL/pgSQL,
-- so that its statements are parsed once per session (ingest calls it for every batch that
-- merges; a SQL function's are parsed again on every call), and planned for each call's
-- arguments and tables: a plan kept from when segment_members was empty would scan it.
CREATE FUNCTION cdp_internal.absorb_profiles(ws integer, absorbed bigint[], survivors bigint[], merged_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    WITH gone AS (
        DELETE FROM cdp.segment_members m WHERE m.workspace_id = ws AND m.profile_id = ANY (absorbed)
        RETURNING m.segment_id, m.profile_id)
    INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
    SELECT ws, g.segment_id, s.name, g.profile_id, 'exited', merged_at, 'merged'
    FROM gone g JOIN cdp.segments s USING (segment_id) ORDER BY g.profile_id, g.segment_id;
    UPDATE cdp_internal.trigger_state t SET profile_id = m.kept
    FROM unnest(absorbed, survivors) AS m(gone, kept)
    WHERE t.profile_id = m.gone
      AND t.segment_id IN (SELECT s.segment_id FROM cdp.segments s WHERE s.workspace_id = ws AND s.mode = 'trigger');
    -- Consent merges by latest: the absorbed profile's decisions join the survivor's where newer.
    INSERT INTO cdp.consent AS c (workspace_id, profile_id, purpose, granted, source, at)
    SELECT DISTINCT ON (m.kept, g.purpose) ws, m.kept, g.purpose, g.granted, g.source, g.at
    FROM cdp.consent g JOIN unnest(absorbed, survivors) AS m(gone, kept) ON g.profile_id = m.gone
    WHERE g.workspace_id = ws
    ORDER BY m.kept, g.purpose, g.at DESC
    ON CONFLICT (workspace_id, profile_id, purpose) DO UPDATE
    SET granted = excluded.granted, source = excluded.source, at = excluded.at WHERE c.at < excluded.at;
    DELETE FROM cdp.consent c WHERE c.workspace_id = ws AND c.profile_id = ANY (absorbed);
    DELETE FROM cdp_internal.trigger_state t
    WHERE t.deadline IS NOT NULL AND t.profile_id = ANY (survivors)
      AND EXISTS (SELECT FROM cdp_internal.trigger_state o
                  WHERE o.segment_id = t.segment_id AND o.profile_id = t.profile_id AND o.deadline IS NOT NULL
                    AND (o.event_at, o.event_id) < (t.event_at, t.event_id));
END;
$$;

-- Fires the unless-triggers whose deadline has passed by `at`; returns how many fired.
CREATE FUNCTION cdp_internal.fire_due_triggers(workspace integer, at timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
WITH due AS (
    DELETE FROM cdp_internal.trigger_state t USING cdp.segments s
    WHERE s.segment_id = t.segment_id AND s.workspace_id = workspace AND t.deadline <= at
    RETURNING t.segment_id, s.name, s.trigger_rule AS r, t.profile_id, t.event_at),
fired AS (
    INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
    SELECT workspace, d.segment_id, d.name, d.profile_id, 'fired', at,
           format('%s at %s, no %s within %s', d.r ->> 'when', cdp_internal.iso(d.event_at), d.r ->> 'unless', d.r ->> 'within')
    FROM due d ORDER BY d.profile_id, d.event_at, d.segment_id
    RETURNING 1)
SELECT count(*) FROM fired;
$$;

-- A batch's events (profile, name, time, id) against the workspace's triggers, at `at` (ingest
-- calls it only for a workspace that has triggers).
CREATE FUNCTION cdp_internal.run_triggers(workspace integer, profiles bigint[], names text[], times timestamptz[],
                                          ids text[], at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fired bigint := 0;
    e record;
    n bigint;
BEGIN
    -- An "unless" event inside an open occurrence's window cancels it; then what is due fires;
    -- then "when" events open occurrences (one per trigger and person), which this batch's own
    -- "unless" events may cancel at once.
    FOR n IN 1..2 LOOP
        IF n = 2 THEN
            fired := fired + cdp_internal.fire_due_triggers(workspace, at);
            INSERT INTO cdp_internal.trigger_state (segment_id, profile_id, event_at, event_id, deadline)
            SELECT DISTINCT ON (s.segment_id, b.profile_id) s.segment_id, b.profile_id, b.ts, b.id,
                   b.ts + (s.trigger_rule ->> 'within')::interval
            FROM unnest(profiles, names, times, ids) AS b(profile_id, name, ts, id)
            JOIN cdp.segments s ON s.workspace_id = workspace AND s.mode = 'trigger' AND s.trigger_rule ? 'unless'
                               AND s.trigger_rule ->> 'when' = b.name
            WHERE NOT EXISTS (SELECT FROM cdp_internal.trigger_state t
                              WHERE t.segment_id = s.segment_id AND t.profile_id = b.profile_id)
            ORDER BY s.segment_id, b.profile_id, b.ts, b.id
            ON CONFLICT DO NOTHING;
        END IF;
        DELETE FROM cdp_internal.trigger_state t
        USING cdp.segments s, unnest(profiles, names, times, ids) AS b(profile_id, name, ts, id)
        WHERE s.segment_id = t.segment_id AND s.workspace_id = workspace AND s.mode = 'trigger'
          AND s.trigger_rule ->> 'unless' = b.name AND b.profile_id = t.profile_id
          AND b.ts >= t.event_at AND b.ts <= t.deadline;
    END LOOP;

    -- Counting triggers ("Error Shown" 3 times within 10 minutes) and plain ones (times 1): in
    -- event time order per person; a firing uses up the events that made it.
    FOR e IN
        SELECT s.segment_id, s.name, s.trigger_rule AS r, b.*
        FROM unnest(profiles, names, times, ids) AS b(profile_id, name, ts, id)
        JOIN cdp.segments s ON s.workspace_id = workspace AND s.mode = 'trigger' AND NOT s.trigger_rule ? 'unless'
                           AND s.trigger_rule ->> 'when' = b.name
        ORDER BY s.segment_id, b.profile_id, b.ts, b.id
    LOOP
        INSERT INTO cdp_internal.trigger_state (segment_id, profile_id, event_at, event_id)
        VALUES (e.segment_id, e.profile_id, e.ts, e.id) ON CONFLICT DO NOTHING;
        SELECT count(*) INTO n FROM cdp_internal.trigger_state t
        WHERE t.segment_id = e.segment_id AND t.profile_id = e.profile_id AND t.deadline IS NULL
          AND t.event_at > e.ts - (e.r ->> 'within')::interval AND t.event_at <= e.ts;
        IF n >= (e.r ->> 'times')::int THEN
            DELETE FROM cdp_internal.trigger_state t
            WHERE t.segment_id = e.segment_id AND t.profile_id = e.profile_id AND t.deadline IS NULL AND t.event_at <= e.ts;
            INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
            VALUES (workspace, e.segment_id, e.name, e.profile_id, 'fired', at,
                    CASE WHEN (e.r ->> 'times')::int = 1 THEN format('%s at %s', e.r ->> 'when', cdp_internal.iso(e.ts))
                         ELSE format('%s %s times within %s, the last at %s', e.r ->> 'when', e.r ->> 'times',
                                     e.r ->> 'within', cdp_internal.iso(e.ts)) END);
            fired := fired + 1;
        END IF;
    END LOOP;
    RETURN fired;
END;
$$;

-- Every live profile of a workspace that has a record.
CREATE FUNCTION cdp_internal.all_profiles(workspace integer) RETURNS bigint[]
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(array_agg(s.profile_id ORDER BY s.profile_id), '{}') FROM cdp_internal.profile_state s
        WHERE s.workspace_id = workspace);

CREATE FUNCTION cdp_internal.segment_of(name text, workspace integer) RETURNS cdp.segments
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s cdp.segments;
BEGIN
    SELECT * INTO s FROM cdp.segments g WHERE g.workspace_id = workspace AND g.name = segment_of.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'segment "%" does not exist in workspace %', name, workspace USING ERRCODE = 'undefined_object',
            DETAIL = 'cdp.segments lists the segments and triggers.', HINT = 'Create it with cdp.create_segment(...).';
    END IF;
    RETURN s;
END;
$$;

-- A batch segment's members made what its query returns now (live profiles of the workspace;
-- the first column is the profile id), writing only the changes.
CREATE FUNCTION cdp_internal.refresh_members(s cdp.segments, cause text) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
WITH now_in AS (
    SELECT DISTINCT p.profile_id FROM (
%s
    ) AS q(profile_id) JOIN cdp.profiles p ON p.workspace_id = $1 AND p.profile_id = q.profile_id::bigint
    WHERE p.merged_into IS NULL),
entered AS (
    INSERT INTO cdp.segment_members (workspace_id, segment_id, profile_id, entered_at)
    SELECT $1, $2, n.profile_id, now() FROM now_in n
    WHERE NOT EXISTS (SELECT FROM cdp.segment_members m WHERE m.segment_id = $2 AND m.profile_id = n.profile_id)
    RETURNING profile_id),
exited AS (
    DELETE FROM cdp.segment_members m WHERE m.segment_id = $2
      AND NOT EXISTS (SELECT FROM now_in n WHERE n.profile_id = m.profile_id)
    RETURNING m.profile_id),
logged AS (
    INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
    SELECT $1, $2, $3, c.profile_id, c.change, now(), $4
    FROM (SELECT profile_id, 'exited' AS change FROM exited UNION ALL SELECT profile_id, 'entered' FROM entered) c
    ORDER BY c.profile_id, c.change DESC
    RETURNING 1)
SELECT count(*) FROM logged$q$, s.definition) INTO n USING s.workspace_id, s.segment_id, s.name, cause;
    UPDATE cdp.segments g SET refreshed_at = now() WHERE g.segment_id = s.segment_id;
    RETURN n;
END;
$$;

-- Creates a segment and fills it: mode realtime (an expression over a profile: traits, computed.<name>,
-- first_seen, last_seen, profile_id) or batch (a SELECT whose first column is a profile id). Its
-- members are the view cdp_audiences.<name> (cdp_audiences.w<workspace>_<name> outside workspace 1).
-- Returns how many profiles it holds.
CREATE FUNCTION cdp.create_segment(name text, definition text, mode text DEFAULT 'realtime', workspace_id integer DEFAULT 1,
                                   purpose text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ws integer := create_segment.workspace_id;
    s cdp.segments;
BEGIN
    IF create_segment.name IS NULL OR create_segment.definition IS NULL OR create_segment.mode IS NULL OR ws IS NULL THEN
        RAISE EXCEPTION 'segment name, definition, mode and workspace must not be null' USING ERRCODE = 'null_value_not_allowed',
            DETAIL = 'Only purpose may be null (no consent needed).', HINT = 'Pass all four.';
    END IF;
    PERFORM cdp_internal.check_segment_name(create_segment.name);
    IF create_segment.purpose IS NOT NULL AND create_segment.mode <> 'realtime' THEN
        RAISE EXCEPTION 'a % segment cannot require consent', create_segment.mode USING ERRCODE = 'feature_not_supported',
            DETAIL = 'The purpose is checked when a realtime segment is evaluated.',
            HINT = 'Join cdp.consent in the batch query instead.';
    END IF;
    IF create_segment.mode NOT IN ('realtime', 'batch') THEN
        RAISE EXCEPTION 'unknown segment mode "%"', create_segment.mode USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'realtime: an expression over a profile, kept by ingest; batch: a query, refreshed by cdp.refresh_segment.',
            HINT = 'Use realtime or batch; for event patterns, cdp.create_trigger.';
    END IF;
    PERFORM cdp_internal.check_segment_definition(create_segment.mode, create_segment.definition);
    IF create_segment.mode = 'realtime' THEN
        PERFORM cdp_internal.check_segment_expression(ws, create_segment.name, create_segment.definition);
    END IF;
    PERFORM cdp_internal.lock_identity(ws);
    INSERT INTO cdp.segments (workspace_id, name, mode, definition, purpose)
    VALUES (ws, create_segment.name, create_segment.mode, create_segment.definition, create_segment.purpose) RETURNING * INTO s;
    -- security_invoker: a reader sees the members its own rights (and row-level security on
    -- cdp.segment_members) show it, never another tenant's through the view.
    EXECUTE format($v$CREATE VIEW %s WITH (security_invoker = true, security_barrier = true) AS
        SELECT m.profile_id, r.traits ->> 'email' AS email, r.traits, r.computed, m.entered_at
        FROM cdp.segment_members m
        LEFT JOIN cdp.profile_records r ON r.workspace_id = m.workspace_id AND r.profile_id = m.profile_id
        WHERE m.segment_id = %s$v$, cdp_internal.segment_view(ws, s.name), s.segment_id);
    EXECUTE format('COMMENT ON VIEW %s IS %L', cdp_internal.segment_view(ws, s.name),
                   format('Members of segment %s (%s): %s', s.name, s.mode, s.definition));
    EXECUTE format('GRANT SELECT ON %s TO cdp_admin', cdp_internal.segment_view(ws, s.name));
    IF s.mode = 'realtime' THEN
        PERFORM cdp_internal.evaluate_segments(ws, cdp_internal.all_profiles(ws), now(), 'created');
    ELSE
        PERFORM cdp_internal.refresh_members(s, 'created');
    END IF;
    RETURN (SELECT count(*) FROM cdp.segment_members m WHERE m.segment_id = s.segment_id);
END;
$$;
COMMENT ON FUNCTION cdp.create_segment(text, text, text, integer, text) IS
    'Creates a realtime or batch segment, fills it, and exposes it as a view in cdp_audiences; returns its size';

CREATE FUNCTION cdp.refresh_segment(name text, workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s cdp.segments := cdp_internal.segment_of(refresh_segment.name, refresh_segment.workspace_id);
BEGIN
    PERFORM cdp_internal.lock_identity(s.workspace_id);
    IF s.mode = 'batch' THEN
        RETURN cdp_internal.refresh_members(s, 'refresh');
    ELSIF s.mode = 'realtime' THEN
        RETURN cdp_internal.evaluate_segments(s.workspace_id, cdp_internal.all_profiles(s.workspace_id), now(), 'refresh');
    END IF;
    RAISE EXCEPTION '"%" is a trigger, not a segment', s.name USING ERRCODE = 'wrong_object_type',
        DETAIL = 'Triggers fire on events; they have no members to refresh.', HINT = 'Refresh a segment.';
END;
$$;
COMMENT ON FUNCTION cdp.refresh_segment(text, integer) IS
    'Recomputes a segment''s members (batch: runs its query) and writes the changes to the feed; returns how many';

CREATE FUNCTION cdp.redefine_segment(name text, definition text, workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s cdp.segments := cdp_internal.segment_of(redefine_segment.name, redefine_segment.workspace_id);
BEGIN
    IF s.mode = 'trigger' THEN
        RAISE EXCEPTION '"%" is a trigger, not a segment', s.name USING ERRCODE = 'wrong_object_type',
            DETAIL = 'A trigger is redefined by dropping it and creating it again.', HINT = 'Use cdp.drop_segment and cdp.create_trigger.';
    END IF;
    PERFORM cdp_internal.check_segment_definition(s.mode, redefine_segment.definition);
    IF s.mode = 'realtime' THEN
        PERFORM cdp_internal.check_segment_expression(s.workspace_id, s.name, redefine_segment.definition);
    END IF;
    PERFORM cdp_internal.lock_identity(s.workspace_id);
    UPDATE cdp.segments g SET definition = redefine_segment.definition WHERE g.segment_id = s.segment_id
    RETURNING * INTO s;
    EXECUTE format('COMMENT ON VIEW %s IS %L', cdp_internal.segment_view(s.workspace_id, s.name),
                   format('Members of segment %s (%s): %s', s.name, s.mode, s.definition));
    IF s.mode = 'batch' THEN
        RETURN cdp_internal.refresh_members(s, 'redefined');
    END IF;
    RETURN cdp_internal.evaluate_segments(s.workspace_id, cdp_internal.all_profiles(s.workspace_id), now(), 'redefined');
END;
$$;
COMMENT ON FUNCTION cdp.redefine_segment(text, text, integer) IS
    'Changes a segment''s definition and moves its members to it, writing the changes; returns how many';

CREATE FUNCTION cdp.rename_segment(name text, new_name text, workspace_id integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s cdp.segments := cdp_internal.segment_of(rename_segment.name, rename_segment.workspace_id);
BEGIN
    PERFORM cdp_internal.check_segment_name(new_name);
    UPDATE cdp.segments g SET name = new_name WHERE g.segment_id = s.segment_id;
    IF s.mode <> 'trigger' THEN
        EXECUTE format('ALTER VIEW %s RENAME TO %I', cdp_internal.segment_view(s.workspace_id, s.name),
                       CASE WHEN s.workspace_id = 1 THEN new_name ELSE 'w' || s.workspace_id || '_' || new_name END);
    END IF;
END;
$$;
COMMENT ON FUNCTION cdp.rename_segment(text, text, integer) IS 'Renames a segment or trigger (and its view); the feed keeps old names';

-- Drops a segment: every member exits first (cause dropped), so consumers learn of it.
CREATE FUNCTION cdp.drop_segment(name text, workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s cdp.segments := cdp_internal.segment_of(drop_segment.name, drop_segment.workspace_id);
    n bigint;
BEGIN
    PERFORM cdp_internal.lock_identity(s.workspace_id);
    INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
    SELECT s.workspace_id, s.segment_id, s.name, m.profile_id, 'exited', now(), 'dropped'
    FROM cdp.segment_members m WHERE m.segment_id = s.segment_id ORDER BY m.profile_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF s.mode <> 'trigger' THEN
        EXECUTE format('DROP VIEW %s', cdp_internal.segment_view(s.workspace_id, s.name));
    END IF;
    DELETE FROM cdp.segments g WHERE g.segment_id = s.segment_id;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cdp.drop_segment(text, integer) IS 'Drops a segment or trigger; its members exit first; returns how many';

-- A behavioural trigger: fires once per occurrence into the feed (change 'fired'):
--   unless_event given: `when_event` not followed by `unless_event` within `within` (abandoned
--   cart: 'Product Added' unless 'Order Completed' within 1 hour), fired when the time is up;
--   else: `when_event` `times` times within `within` ('Error Shown' 3 times in 10 minutes),
--   fired by the event that makes it.
CREATE FUNCTION cdp.create_trigger(name text, when_event text, unless_event text DEFAULT NULL,
                                   within interval DEFAULT '1 hour', times integer DEFAULT 1,
                                   workspace_id integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp SET intervalstyle = 'postgres'  -- the stored text reads the same for everyone
AS $$
BEGIN
    PERFORM cdp_internal.check_segment_name(create_trigger.name);
    IF coalesce(when_event, '') = '' OR within IS NULL OR within <= interval '0' OR coalesce(times, 0) < 1
       OR create_trigger.workspace_id IS NULL THEN
        RAISE EXCEPTION 'trigger "%" needs an event, a positive window and a count of at least 1', create_trigger.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('when_event => %L, within => %L, times => %L.', when_event, within, times),
                  HINT = 'For example: cdp.create_trigger(''abandoned_cart'', ''Product Added'', ''Order Completed'', ''1 hour'').';
    END IF;
    IF unless_event IS NOT NULL AND times > 1 THEN
        RAISE EXCEPTION 'trigger "%" has both an unless event and a count', create_trigger.name
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A trigger either waits for an unless event or counts its event, not both.',
                  HINT = 'Make two triggers.';
    END IF;
    INSERT INTO cdp.segments (workspace_id, name, mode, definition, trigger_rule)
    VALUES (create_trigger.workspace_id, create_trigger.name, 'trigger',
            CASE WHEN unless_event IS NOT NULL THEN format('%s without %s within %s', when_event, unless_event, within)
                 ELSE format('%s %s times within %s', when_event, times, within) END,
            jsonb_strip_nulls(jsonb_build_object('when', when_event, 'unless', unless_event, 'within', within::text,
                                                 'times', times)));
END;
$$;
COMMENT ON FUNCTION cdp.create_trigger(text, text, text, interval, integer, integer) IS
    'Creates a behavioural trigger that fires into cdp.segment_changes once per occurrence';

-- The feed, read with a cursor: the changes after the consumer's last ack, oldest first (the
-- same ones again until acked: at least once). A new consumer starts at the beginning.
CREATE FUNCTION cdp.read_changes(consumer text, max_changes integer DEFAULT 1000, workspace_id integer DEFAULT 1,
                                 purpose text DEFAULT NULL)
RETURNS SETOF cdp.segment_changes
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    acked bigint;
BEGIN
    IF consumer IS NULL OR max_changes IS NULL OR read_changes.workspace_id IS NULL THEN
        RAISE EXCEPTION 'consumer, max_changes and workspace_id must not be null' USING ERRCODE = 'null_value_not_allowed',
            DETAIL = 'Only purpose may be null (a consumer that activates for no particular purpose).',
            HINT = 'Name the consumer, e.g. cdp.read_changes(''email-tool'', 1000, purpose => ''marketing'').';
    END IF;
    INSERT INTO cdp.segment_consumers (workspace_id, consumer) VALUES (read_changes.workspace_id, read_changes.consumer)
    ON CONFLICT DO NOTHING;
    SELECT c.acked_change_id INTO acked FROM cdp.segment_consumers c
    WHERE c.workspace_id = read_changes.workspace_id AND c.consumer = read_changes.consumer;
    -- A consumer that declares a purpose gets enters and firings only of profiles that grant it
    -- now; exits always (it must learn who left, consent withdrawn included).
    RETURN QUERY SELECT * FROM cdp.segment_changes c
                 WHERE c.workspace_id = read_changes.workspace_id AND c.change_id > acked
                   AND (read_changes.purpose IS NULL OR c.change = 'exited'
                        OR EXISTS (SELECT FROM cdp.consent g WHERE g.workspace_id = c.workspace_id
                                     AND g.profile_id = c.profile_id AND g.purpose = read_changes.purpose AND g.granted))
                 ORDER BY c.change_id LIMIT max_changes;
END;
$$;
COMMENT ON FUNCTION cdp.read_changes(text, integer, integer, text) IS
    'The feed''s changes after the consumer''s last ack, oldest first (at least once: the same again until acked)';

CREATE FUNCTION cdp.ack_changes(consumer text, change_id bigint, workspace_id integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ack_changes.change_id > coalesce((SELECT max(c.change_id) FROM cdp.segment_changes c
                                         WHERE c.workspace_id = ack_changes.workspace_id), 0) THEN
        RAISE EXCEPTION 'change % has not been written', ack_changes.change_id USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Acking past the last change would skip changes that come later.',
            HINT = 'Ack the change_id of the last change you processed.';
    END IF;
    UPDATE cdp.segment_consumers c SET acked_change_id = greatest(c.acked_change_id, ack_changes.change_id), acked_at = now()
    WHERE c.workspace_id = ack_changes.workspace_id AND c.consumer = ack_changes.consumer;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" has not read the feed', ack_changes.consumer USING ERRCODE = 'undefined_object',
            DETAIL = format('cdp.segment_consumers has no consumer %L in workspace %s.', ack_changes.consumer, ack_changes.workspace_id),
            HINT = 'Read with cdp.read_changes(consumer) first.';
    END IF;
END;
$$;
COMMENT ON FUNCTION cdp.ack_changes(text, bigint, integer) IS 'Marks the feed read up to a change for a consumer';

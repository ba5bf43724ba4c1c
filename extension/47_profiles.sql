-- Profiles: the golden record of every profile (its traits and computed traits), kept by
-- ingest; rebuilding records, defining computed traits, moving time, and the 360 view.

-- The golden record of every profile, kept by ingest in the same transaction as the events
-- (cdp.update_profiles): the merge state of the traits its events carried (identify and group
-- traits, context.traits), the state of its computed traits, and when it was first and last seen.
-- A merge folds the absorbed profile's record into the survivor's; a split rebuilds the parts'
-- records from their events.
CREATE TABLE cdp_internal.profile_state (
    workspace_id integer NOT NULL,
    profile_id bigint NOT NULL,
    traits bytea NOT NULL,                -- cdp_internal.traits_of(traits) is the record
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    computed bytea,                       -- cdp_internal.computed_of(workspace_id, computed, at) are its computed traits
    computed_expires_at timestamptz,      -- when a windowed one next changes: cdp.tick() takes it from there
    PRIMARY KEY (workspace_id, profile_id)
) WITH (fillfactor = 70);                 -- rewritten by every batch that sees the profile: heap-only updates
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.profile_state', '');
-- What cdp.tick() looks for. The expiry only moves when a profile's oldest bucket leaves its
-- window, so most updates by ingest leave it alone and stay heap-only.
CREATE INDEX profile_state_expiry_idx ON cdp_internal.profile_state (workspace_id, computed_expires_at)
    WHERE computed_expires_at IS NOT NULL;

CREATE VIEW cdp.profile_records AS
SELECT p.workspace_id, p.profile_id, coalesce(cdp_internal.traits_of(s.traits), '{}'::jsonb) AS traits,
       coalesce(cdp_internal.trait_sources_of(s.traits), '{}'::jsonb) AS trait_sources,
       cdp_internal.computed_of(p.workspace_id, s.computed, now()) AS computed, s.first_seen, s.last_seen
FROM cdp.profiles p LEFT JOIN cdp_internal.profile_state s USING (workspace_id, profile_id)
WHERE p.merged_into IS NULL;
COMMENT ON VIEW cdp.profile_records IS
    'The golden record of each live profile: its traits by the rules of cdp.trait_rules, where and when each came from, its computed traits now, first and last seen';

-- The records of some profiles rebuilt from their events (after a split: each part keeps what
-- its own identifiers' events said).
CREATE FUNCTION cdp_internal.recompute_profile_records(workspace integer, profiles bigint[]) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM cdp_internal.profile_state WHERE workspace_id = workspace AND profile_id = ANY (profiles);
INSERT INTO cdp_internal.profile_state (workspace_id, profile_id, traits, first_seen, last_seen, computed, computed_expires_at)
SELECT workspace, r.profile_id, r.traits, r.first_seen, r.last_seen, r.computed, cdp_internal.computed_next_expiry(r.computed)
FROM (
    SELECT e.current_profile_id AS profile_id,
           cdp_internal.merge_traits_state(t.traits, e."timestamp", NULL, workspace, t.source, e.event_id) AS traits,
           min(e."timestamp") AS first_seen, max(e."timestamp") AS last_seen,
           cdp_internal.computed_state(workspace, NULL, now(), e.type, e.event, e.name, e."timestamp", e.event_id,
                                       e.properties, e.traits, e.context) FILTER (WHERE t.place = 1) AS computed
    FROM cdp.events_by_profile e
    CROSS JOIN LATERAL (VALUES
        (1, CASE WHEN e.type IN ('identify', 'group') AND jsonb_typeof(e.traits) = 'object' THEN e.traits END, e.type),
        (2, CASE WHEN jsonb_typeof(e.context -> 'traits') = 'object' THEN e.context -> 'traits' END, 'context.traits'))
      AS t(place, traits, source)
    WHERE e.workspace_id = workspace AND e.current_profile_id = ANY (profiles)
    GROUP BY e.current_profile_id) r;
$$;

CREATE FUNCTION cdp.rebuild_profile_records(workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cdp_rebuild_profile_records';
COMMENT ON FUNCTION cdp.rebuild_profile_records(integer) IS
    'Rebuilds every live profile''s record from its events and the rows of registered sources (after ingest with cdp.update_profiles off, or new trait rules); returns how many';

-- Defines (or redefines) a computed trait and counts the events already stored into every
-- profile's record, in one transaction with ingest held off (the identity lock), so no event is
-- counted twice or missed. Returns how many profiles the stored events gave a value.
CREATE FUNCTION cdp.define_computed_trait(name text, definition jsonb, workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ws integer := define_computed_trait.workspace_id;
    trait text := define_computed_trait.name;
    profiles bigint;
BEGIN
    PERFORM cdp_internal.check_computed_trait(trait, define_computed_trait.definition);
    PERFORM cdp_internal.lock_identity(ws);
    INSERT INTO cdp.computed_traits AS c (workspace_id, name, definition) VALUES (ws, trait, define_computed_trait.definition)
    ON CONFLICT ON CONSTRAINT computed_traits_pkey
    DO UPDATE SET definition = excluded.definition, defined_at = now();
    PERFORM cdp_internal.check_all_segments(ws);  -- a segment reading it may need it as it was
    -- Every live profile's record gets the stored events' state of this one trait (a record made
    -- by ingest before the definition holds none of it, or an older version's, which goes).
    WITH backfill AS (
        SELECT e.current_profile_id AS profile_id,
               cdp_internal.computed_state(ws, trait, now(), e.type, e.event, e.name, e."timestamp", e.event_id,
                                           e.properties, e.traits, e.context) AS state
        FROM cdp.events_by_profile e
        WHERE e.workspace_id = ws AND e.current_profile_id IS NOT NULL
        GROUP BY e.current_profile_id)
    UPDATE cdp_internal.profile_state s
    SET (computed, computed_expires_at) =
        (SELECT m, cdp_internal.computed_next_expiry(m)
         FROM (SELECT cdp_internal.computed_merge(ws, s.computed, b.state, now())) AS x(m))
    FROM backfill b
    WHERE s.workspace_id = ws AND s.profile_id = b.profile_id AND b.state IS NOT NULL;
    GET DIAGNOSTICS profiles = ROW_COUNT;
    -- Segments over the trait follow its new values.
    PERFORM cdp_internal.evaluate_segments(ws, cdp_internal.all_profiles(ws), now(), 'computed trait ' || trait);
    RETURN profiles;
END;
$$;
COMMENT ON FUNCTION cdp.define_computed_trait(text, jsonb, integer) IS
    'Defines a computed trait (see cdp.computed_traits) and counts the stored events into every profile; returns how many profiles have a value';

CREATE FUNCTION cdp.drop_computed_trait(name text, workspace_id integer DEFAULT 1) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM cdp.computed_traits c WHERE c.workspace_id = drop_computed_trait.workspace_id
        AND c.name = drop_computed_trait.name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM cdp_internal.check_all_segments(drop_computed_trait.workspace_id);  -- none may read it
    RETURN true;
END;
$$;
COMMENT ON FUNCTION cdp.drop_computed_trait(text, integer) IS
    'Drops a computed trait: it leaves every profile at once, its counts go with the next write of each record';

-- Moves time forward for a workspace's windowed computed traits: every profile whose oldest
-- bucket has left its window by `at` is compacted, so what segments and exports read stays right
-- and states stay small. Reading never needs it (values are computed for the time they are read
-- at). cdp.tick() calls it for every workspace. Returns how many profiles changed.
CREATE FUNCTION cdp_internal.move_computed_traits(workspace integer, at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed bigint[];
BEGIN
    PERFORM cdp_internal.lock_identity(workspace);
    WITH moved AS (
        UPDATE cdp_internal.profile_state s
        SET (computed, computed_expires_at) =
            (SELECT m, cdp_internal.computed_next_expiry(m)
             FROM (SELECT cdp_internal.computed_merge(workspace, s.computed, NULL, move_computed_traits.at)) AS x(m))
        WHERE s.workspace_id = workspace AND s.computed_expires_at <= move_computed_traits.at
        RETURNING s.profile_id)
    SELECT coalesce(array_agg(profile_id ORDER BY profile_id), '{}') INTO changed FROM moved;
    -- Their realtime segments follow (the windows moved whether or not anyone ticked: the
    -- segments see it now).
    PERFORM cdp_internal.evaluate_segments(workspace, changed, move_computed_traits.at, 'tick');
    RETURN cardinality(changed);
END;
$$;

-- The whole profile of the person an identifier belongs to, for support agents and APIs: its
-- identifiers by type, golden record and where each trait came from, computed traits at `at`,
-- first and last seen, the profiles merged into it, and its last events (newest first).
CREATE FUNCTION cdp.profile(id_type text, value text, workspace_id integer DEFAULT 1, at timestamptz DEFAULT now(),
                            last_events integer DEFAULT 10) RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ws integer := profile.workspace_id;
    person bigint := cdp.resolve(profile.id_type, profile.value, profile.workspace_id);
    result jsonb;
BEGIN
    IF person IS NULL THEN
        RAISE EXCEPTION 'identifier % "%" belongs to no profile', profile.id_type, profile.value
            USING ERRCODE = 'no_data_found',
                  DETAIL = format('cdp.identifiers has no profile for %s %L in workspace %s (never seen, or blocked).',
                                  profile.id_type, cdp.normalise_identifier(profile.id_type, profile.value), ws),
                  HINT = 'Check the type and value; cdp.normalise_identifier shows the stored form.';
    END IF;
    SELECT jsonb_build_object(
        'profile_id', person,
        'identifiers', coalesce((
            SELECT jsonb_object_agg(i.id_type, i.ids ORDER BY i.id_type)
            FROM (SELECT i.id_type, jsonb_agg(i.id_value ORDER BY i.first_seen, i.id_value) AS ids
                  FROM cdp.identifiers i WHERE i.workspace_id = ws AND i.profile_id = person GROUP BY i.id_type) i),
            '{}'::jsonb),
        'traits', coalesce(cdp_internal.traits_of(s.traits), '{}'::jsonb),
        'trait_sources', coalesce(cdp_internal.trait_sources_of(s.traits), '{}'::jsonb),
        'computed', cdp_internal.computed_of(ws, s.computed, profile.at),
        'first_seen', s.first_seen,
        'last_seen', s.last_seen,
        'merged_from', coalesce((
            WITH RECURSIVE absorbed AS (
                SELECT p.profile_id FROM cdp.profiles p WHERE p.workspace_id = ws AND p.merged_into = person
                UNION
                SELECT p.profile_id FROM cdp.profiles p JOIN absorbed a ON p.workspace_id = ws AND p.merged_into = a.profile_id)
            SELECT jsonb_agg(a.profile_id ORDER BY a.profile_id) FROM absorbed a), '[]'::jsonb),
        'last_events', coalesce((
            SELECT jsonb_agg(l.event ORDER BY l.ts DESC, l.event_id DESC)
            FROM (SELECT jsonb_build_object('type', e.type, 'event', coalesce(e.event, e.name), 'timestamp', e."timestamp",
                                            'properties', e.properties, 'event_id', e.event_id) AS event,
                         e."timestamp" AS ts, e.event_id
                  FROM cdp.events_by_profile e
                  WHERE e.workspace_id = ws AND e.current_profile_id = person
                  ORDER BY e."timestamp" DESC, e.event_id DESC
                  LIMIT profile.last_events) l), '[]'::jsonb))
    INTO result
    FROM (VALUES (1)) AS me LEFT JOIN cdp_internal.profile_state s ON s.workspace_id = ws AND s.profile_id = person;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION cdp.profile(text, text, integer, timestamptz, integer) IS
    'The 360 view of a person as jsonb: identifiers, traits and their sources, computed traits, first/last seen, merged profiles, last events';

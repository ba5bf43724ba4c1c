-- pg_cdp 0.1.0 install script, assembled from extension/*.sql by make; do not edit.
\echo Use "CREATE EXTENSION cdp" to load this file. \quit

-- from extension/00_schemas.sql
-- Schemas and workspaces. `cdp` (created by CREATE EXTENSION from the control file) is the
-- public API; `cdp_internal` holds state users do not query directly.

CREATE SCHEMA cdp_internal;
COMMENT ON SCHEMA cdp_internal IS 'pg_cdp internal state; not a stable interface';

-- Every customer-data table carries workspace_id: the tenant, and the distribution column if
-- the data ever moves to Citus. Workspace 1 is the default.
CREATE TABLE cdp.workspaces (
    workspace_id integer PRIMARY KEY CHECK (workspace_id > 0),
    name text NOT NULL UNIQUE CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cdp.workspaces IS 'Tenants; every customer-data row belongs to one';
INSERT INTO cdp.workspaces (workspace_id, name) VALUES (1, 'default');
SELECT pg_catalog.pg_extension_config_dump('cdp.workspaces', 'WHERE workspace_id <> 1');

CREATE FUNCTION cdp.create_workspace(name text) RETURNS integer
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO cdp.workspaces (workspace_id, name)
    SELECT coalesce(max(workspace_id), 0) + 1, create_workspace.name FROM cdp.workspaces
    RETURNING workspace_id;
END;
COMMENT ON FUNCTION cdp.create_workspace(text) IS 'Creates a workspace (tenant) and returns its id';

-- from extension/10_events.sql
-- Events: one row per accepted event, partitioned by month of the event time. Typed columns
-- for what every query needs; properties, traits, context and extra (every other top-level
-- key, integrations among them) as jsonb, so nothing the client sent is lost.

CREATE TABLE cdp.events (
    workspace_id integer NOT NULL,
    event_id text NOT NULL,               -- messageId as sent (or "generated:<hash>" when absent)
    type text NOT NULL,                   -- track | identify | page | screen | group | alias
    event text,                           -- track: the event name
    name text,                            -- page / screen: the name
    anonymous_id text,
    user_id text,
    group_id text,
    previous_id text,
    profile_id bigint,                    -- set by identity resolution
    "timestamp" timestamptz NOT NULL,     -- event time after the clock-skew correction
    original_timestamp timestamptz,       -- the client's clock
    sent_at timestamptz,                  -- the client's clock when sending
    received_at timestamptz NOT NULL,     -- the server's clock
    session_id uuid,
    page_url text,
    page_path text,
    page_title text,
    referrer text,
    referrer_host text,
    referrer_medium text,                 -- search | social | email | internal | unknown
    utm_source text,
    utm_medium text,
    utm_campaign text,
    utm_term text,
    utm_content text,
    device_type text,                     -- desktop | mobile | tablet | bot | other
    os text,
    os_version text,
    browser text,
    browser_version text,
    ip inet,                              -- per cdp.ip_policy
    locale text,
    properties jsonb,
    traits jsonb,
    context jsonb,
    extra jsonb
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE cdp.events IS 'Accepted events, one row each, partitioned by month of event time';

-- Events arrive roughly in time order and are read by time range: a BRIN index costs almost
-- nothing at ingest and lets a time-range query skip what it does not need within a month.
-- Indexes for other access paths come with the features that use them.
CREATE INDEX events_time_brin ON cdp.events USING brin ("timestamp") WITH (pages_per_range = 32);
SELECT pg_catalog.pg_extension_config_dump('cdp.events', '');

-- Creates the month's partition of cdp.events if it is missing. Partitions are made as plain
-- tables and attached, which locks cdp.events only in SHARE UPDATE EXCLUSIVE mode: concurrent
-- ingest keeps writing, and two creators queue instead of deadlocking.
CREATE FUNCTION cdp_internal.ensure_events_partition(event_time timestamptz) RETURNS regclass
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    month_start timestamp := date_trunc('month', event_time AT TIME ZONE 'UTC');
    lower_bound timestamptz := month_start AT TIME ZONE 'UTC';
    upper_bound timestamptz := (month_start + interval '1 month') AT TIME ZONE 'UTC';
    partition_name text := format('events_%s', to_char(month_start, 'YYYY_MM'));
    partition regclass;
BEGIN
    LOCK TABLE cdp.events IN SHARE UPDATE EXCLUSIVE MODE;
    partition := to_regclass(format('cdp.%I', partition_name));
    IF partition IS NOT NULL THEN
        RETURN partition;
    END IF;
    EXECUTE format('CREATE TABLE cdp.%I (LIKE cdp.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                   ' INCLUDING STORAGE INCLUDING COMPRESSION)', partition_name);
    EXECUTE format('ALTER TABLE cdp.events ATTACH PARTITION cdp.%I FOR VALUES FROM (%L) TO (%L)',
                   partition_name, lower_bound, upper_bound);
    RETURN format('cdp.%I', partition_name)::regclass;
END;
$$;
COMMENT ON FUNCTION cdp_internal.ensure_events_partition(timestamptz) IS
    'Creates the monthly partition of cdp.events that holds the given time, if missing';

-- Every payload item that did not become an event, with the reason and the text as sent.
CREATE TABLE cdp.rejected_events (
    rejected_id bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id integer NOT NULL,
    received_at timestamptz NOT NULL,
    reason text NOT NULL,          -- a stable code: invalid_json, size_violation, missing_identity, ...
    detail text NOT NULL,          -- what exactly was wrong
    message_id text,               -- when one could be read
    item_index integer,            -- position in the payload; NULL when the whole payload was rejected
    raw text NOT NULL,             -- the bytes as sent (invalid UTF-8 shown as U+FFFD)
    PRIMARY KEY (workspace_id, rejected_id)
);
COMMENT ON TABLE cdp.rejected_events IS 'Payload items that were not stored as events, with reason and raw text';
CREATE INDEX rejected_events_workspace_time_idx ON cdp.rejected_events (workspace_id, received_at);
SELECT pg_catalog.pg_extension_config_dump('cdp.rejected_events', '');

-- Exact dedup: a unique key the time-partitioned events table cannot give. One row per
-- messageId seen within cdp.dedup_window, as a 128-bit hash of the messageId seeded with the
-- workspace id: one key column, so each comparison in the (random-order, cache-missing) index
-- descent of every claim is one memcmp rather than an int4 and a uuid comparison.
CREATE TABLE cdp_internal.message_ids (
    workspace_id integer NOT NULL,
    message_hash uuid PRIMARY KEY,
    received_at timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.message_ids', '');

-- The open session of each actor ("a:" anonymous id or "u:" user id), continued across batches.
-- Unlogged: it is rewritten by every batch, and losing it in a crash costs only this: the next
-- event of each actor opens a new session. Half of each page is left free so that a batch's
-- update of an actor's row lands on the same page as a heap-only tuple: no new index entry and
-- no new page per update (with full pages each update cost a primary-key insert). Keyed, like
-- message_ids, by a 128-bit hash of the actor seeded with the workspace: a small index whose
-- comparisons are one memcmp each (the actor text was an int4 and a text comparison).
CREATE UNLOGGED TABLE cdp_internal.session_state (
    actor_key uuid PRIMARY KEY,
    workspace_id integer NOT NULL,
    actor text NOT NULL,
    session_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    campaign text NOT NULL DEFAULT ''
) WITH (fillfactor = 50);
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.session_state', '');

-- from extension/20_ingest.sql
-- Ingest: Segment-spec events in, typed rows out.

CREATE FUNCTION cdp.ingest(
    payload text,
    workspace_id integer DEFAULT 1,
    received_at timestamptz DEFAULT NULL,
    OUT accepted integer,
    OUT duplicates integer,
    OUT rejected integer)
RETURNS record
AS 'MODULE_PATHNAME', 'cdp_ingest_text'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION cdp.ingest(text, integer, timestamptz) IS
    'Ingests one Segment-spec event, a JSON array of events, or a {"batch": [...]} envelope; '
    'returns how many were accepted, were duplicates, were rejected (see cdp.rejected_events)';

CREATE FUNCTION cdp.ingest(
    payload jsonb,
    workspace_id integer DEFAULT 1,
    received_at timestamptz DEFAULT NULL,
    OUT accepted integer,
    OUT duplicates integer,
    OUT rejected integer)
RETURNS record
AS 'MODULE_PATHNAME', 'cdp_ingest_jsonb'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION cdp.ingest(jsonb, integer, timestamptz) IS
    'cdp.ingest for callers that already hold jsonb';

-- Puts rejected payloads through ingest again (after a fix upstream or a changed rule); the ones
-- that are now accepted or found to be duplicates are removed from cdp.rejected_events.
CREATE FUNCTION cdp.replay_rejected(rejected_ids bigint[], workspace_id integer DEFAULT 1,
                                    OUT accepted integer, OUT duplicates integer, OUT rejected integer)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    result record;
BEGIN
    accepted := 0;
    duplicates := 0;
    rejected := 0;
    FOR r IN
        DELETE FROM cdp.rejected_events e
        WHERE e.workspace_id = replay_rejected.workspace_id AND e.rejected_id = ANY (rejected_ids)
        RETURNING e.raw, e.received_at
    LOOP
        result := cdp.ingest(r.raw, replay_rejected.workspace_id, r.received_at);
        accepted := accepted + result.accepted;
        duplicates := duplicates + result.duplicates;
        rejected := rejected + result.rejected;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cdp.replay_rejected(bigint[], integer) IS
    'Re-ingests rejected payloads; those rejected again are recorded anew with their current reason';

-- Ingest writes jsonb straight from its own parse of the payload. This says whether that jsonb
-- has the same bytes as jsonb_in's for a text (numbers written in their shortest form); the
-- tests use it, and so can anyone who doubts the writer.
CREATE FUNCTION cdp_internal.jsonb_matches_jsonb_in(json_text text) RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'cdp_jsonb_matches_jsonb_in';
COMMENT ON FUNCTION cdp_internal.jsonb_matches_jsonb_in(text) IS
    'Whether cdp''s jsonb writer and jsonb_in give the same bytes for the JSON text';

-- from extension/30_sessions.sql
-- Sessions: one row per visit, summarised from the events that ingest gave a session_id.

CREATE VIEW cdp.sessions AS
SELECT
    workspace_id,
    session_id,
    (array_agg(anonymous_id ORDER BY "timestamp") FILTER (WHERE anonymous_id IS NOT NULL))[1] AS anonymous_id,
    (array_agg(user_id ORDER BY "timestamp" DESC) FILTER (WHERE user_id IS NOT NULL))[1] AS user_id,
    min("timestamp") AS started_at,
    max("timestamp") AS ended_at,
    max("timestamp") - min("timestamp") AS duration,
    count(*) AS events,
    count(*) FILTER (WHERE type IN ('page', 'screen')) AS pages,
    -- Pages are paths on the web; in an app, a screen's name stands for its page.
    (array_agg(coalesce(page_path, name) ORDER BY "timestamp") FILTER (WHERE type IN ('page', 'screen')))[1] AS landing_page,
    (array_agg(coalesce(page_path, name) ORDER BY "timestamp" DESC) FILTER (WHERE type IN ('page', 'screen')))[1] AS exit_page,
    array_agg(coalesce(page_path, name) ORDER BY "timestamp") FILTER (WHERE type IN ('page', 'screen')) AS page_sequence,
    -- Attribution is the landing event's: where the visit came from (no referrer: direct), and
    -- its campaign (a new campaign starts a new session, so it is always on the first event).
    (array_agg(referrer_host ORDER BY "timestamp"))[1] AS referrer_host,
    (array_agg(referrer_medium ORDER BY "timestamp"))[1] AS referrer_medium,
    (array_agg(utm_source ORDER BY "timestamp"))[1] AS utm_source,
    (array_agg(utm_medium ORDER BY "timestamp"))[1] AS utm_medium,
    (array_agg(utm_campaign ORDER BY "timestamp"))[1] AS utm_campaign,
    (array_agg(device_type ORDER BY "timestamp") FILTER (WHERE device_type IS NOT NULL))[1] AS device_type,
    count(*) FILTER (WHERE type = 'page') = 1 AND count(*) = 1 AS bounced
FROM cdp.events
WHERE session_id IS NOT NULL
GROUP BY workspace_id, session_id;
COMMENT ON VIEW cdp.sessions IS
    'One row per visit: duration, pages, landing and exit page, page sequence, referrer, campaign, device';

-- from extension/40_identity.sql
-- Identity: identifiers (type, normalised value) mapped to profiles, the edges that linked them,
-- the rules that decide what may link, and the history of merges and splits. Ingest keeps all of
-- it current in the same transaction as the events; the functions below explain and correct it.

CREATE TABLE cdp.profiles (
    workspace_id integer NOT NULL,
    profile_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    merged_into bigint,                   -- set when merged into an older profile
    PRIMARY KEY (workspace_id, profile_id)
);
COMMENT ON TABLE cdp.profiles IS 'One row per profile; merged profiles point to the one that absorbed them';
CREATE SEQUENCE cdp_internal.profile_id_seq;
SELECT pg_catalog.pg_extension_config_dump('cdp.profiles', '');
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.profile_id_seq', '');

CREATE TABLE cdp.identifiers (
    workspace_id integer NOT NULL,
    id_type text COLLATE "C" NOT NULL,    -- user_id, anonymous_id, email, phone, device_id, or custom
    id_value text COLLATE "C" NOT NULL,   -- normalised (email lowercased, phone in E.164, ...)
    profile_id bigint,                    -- NULL once the value is blocked: it identifies nobody
    first_seen timestamptz NOT NULL,
    event_id text,                        -- the event that brought it first
    -- Ingest looks identifiers up by value and counts a profile's identifiers by type: both
    -- indexes carry what those lookups read, so they are index-only scans.
    PRIMARY KEY (workspace_id, id_type, id_value) INCLUDE (profile_id)
);
CREATE INDEX identifiers_profile_idx ON cdp.identifiers (workspace_id, profile_id) INCLUDE (id_type);
COMMENT ON TABLE cdp.identifiers IS 'Every identifier seen, normalised, with the profile it belongs to now';
SELECT pg_catalog.pg_extension_config_dump('cdp.identifiers', '');

-- An edge between two identifiers seen together, stored once per pair (a before b, by type then
-- value). merged = false: the rules refused it, and reason says why.
CREATE TABLE cdp.identity_edges (
    workspace_id integer NOT NULL,
    a_type text COLLATE "C" NOT NULL,
    a_value text COLLATE "C" NOT NULL,
    b_type text COLLATE "C" NOT NULL,
    b_value text COLLATE "C" NOT NULL,
    source text NOT NULL,                 -- identify, alias, track, page, ... or a caller's name
    event_id text,                        -- the event that made the edge
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    merged boolean NOT NULL,
    reason text,                          -- why not merged
    PRIMARY KEY (workspace_id, a_type, a_value, b_type, b_value)
);
CREATE INDEX identity_edges_b_idx ON cdp.identity_edges (workspace_id, b_type, b_value);
-- The edges a person cut: few, and probed by every batch that links identifiers.
CREATE INDEX identity_edges_cut_idx ON cdp.identity_edges (workspace_id, a_type, a_value, b_type, b_value)
    WHERE NOT merged AND reason IN ('unlinked', 'blocked');
COMMENT ON TABLE cdp.identity_edges IS 'Pairs of identifiers seen together; merged or refused with a reason';
SELECT pg_catalog.pg_extension_config_dump('cdp.identity_edges', '');

CREATE TABLE cdp.identity_changes (
    change_id bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL CHECK (kind IN ('merge', 'refused', 'split', 'unlink', 'block')),
    profile_id bigint,                    -- merge: the survivor; split: the profile that was split
    other_profile_id bigint,              -- merge: the absorbed profile; split: the new profile
    a_type text, a_value text, b_type text, b_value text,   -- the edge involved
    reason text,
    event_id text,                        -- the event that caused it
    PRIMARY KEY (workspace_id, change_id)
);
COMMENT ON TABLE cdp.identity_changes IS 'Every merge, refused merge, split, unlink and block, with its cause';
SELECT pg_catalog.pg_extension_config_dump('cdp.identity_changes', '');

-- Per identifier type: priority (1 strongest), how many values one profile may hold, and
-- optional RE2 patterns a value must (include) or must not (exclude) match. The built-in rules
-- hold unless a row here overrides them: user_id 1/1, email 2/5, phone 3/5, device_id 4/5,
-- anonymous_id 5/5; any other type 100/5. (Only overrides are stored, so pg_dump and restore
-- never collide with rows the extension made.)
CREATE TABLE cdp.identity_rules (
    workspace_id integer NOT NULL,
    id_type text COLLATE "C" NOT NULL,
    priority integer NOT NULL CHECK (priority > 0),
    max_per_profile integer NOT NULL CHECK (max_per_profile > 0),
    include_pattern text,
    exclude_pattern text,
    trait_key text,              -- a custom type: its values come from this key of the traits
    PRIMARY KEY (workspace_id, id_type)
);
COMMENT ON TABLE cdp.identity_rules IS 'Identifier types: priority, limit per profile, include/exclude patterns';
SELECT pg_catalog.pg_extension_config_dump('cdp.identity_rules', '');

-- Values that never link, on top of the built-in list (null, undefined, anonymous, guest, 0,
-- -1, [object Object], NaN, none, ... and ^[0-]*$). id_type NULL: for every type.
CREATE TABLE cdp.identity_blocklist (
    workspace_id integer NOT NULL,
    id_type text COLLATE "C",
    value text NOT NULL,
    is_pattern boolean NOT NULL DEFAULT false,   -- value is an RE2 pattern over the whole value
    added_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (workspace_id, id_type, value, is_pattern)
);
COMMENT ON TABLE cdp.identity_blocklist IS 'Identifier values (or patterns) that never link, besides the built-in list';
SELECT pg_catalog.pg_extension_config_dump('cdp.identity_blocklist', '');

-- The normalised form of a value of an identifier type, as ingest stores it.
CREATE FUNCTION cdp.normalise_identifier(id_type text, value text) RETURNS text
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'cdp_normalise_identifier';
COMMENT ON FUNCTION cdp.normalise_identifier(text, text) IS
    'The normalised value ingest stores for an identifier (NULL when it is not one)';

-- The profile an identifier belongs to now.
CREATE FUNCTION cdp.resolve(id_type text, value text, workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT i.profile_id FROM cdp.identifiers i
    WHERE i.workspace_id = resolve.workspace_id AND i.id_type = resolve.id_type
      AND i.id_value = cdp.normalise_identifier(resolve.id_type, resolve.value);
END;
COMMENT ON FUNCTION cdp.resolve(text, text, integer) IS 'The current profile of an identifier (NULL if unknown)';

CREATE FUNCTION cdp.same_person(a_type text, a_value text, b_type text, b_value text, workspace_id integer DEFAULT 1)
RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT coalesce(cdp.resolve(a_type, a_value, workspace_id) = cdp.resolve(b_type, b_value, workspace_id), false);
END;
COMMENT ON FUNCTION cdp.same_person(text, text, text, text, integer) IS
    'Whether two identifiers belong to one profile now';

-- Events with the profile they belong to now: through the current profile of their user id,
-- else of their anonymous id, else the profile ingest gave them. Merges and splits show here at
-- once; the events themselves are never rewritten.
CREATE VIEW cdp.events_by_profile AS
SELECT coalesce(u.profile_id, a.profile_id, e.profile_id) AS current_profile_id, e.*
FROM cdp.events e
LEFT JOIN cdp.identifiers u
       ON u.workspace_id = e.workspace_id AND u.id_type = 'user_id' AND u.id_value = btrim(e.user_id)
LEFT JOIN cdp.identifiers a
       ON a.workspace_id = e.workspace_id AND a.id_type = 'anonymous_id' AND a.id_value = btrim(e.anonymous_id);
COMMENT ON VIEW cdp.events_by_profile IS 'Events attributed to their current profile (follows merges and splits)';

CREATE FUNCTION cdp.explain_identity(id_type text, value text, workspace_id integer DEFAULT 1,
    OUT step integer, OUT from_type text, OUT from_value text, OUT to_type text, OUT to_value text,
    OUT source text, OUT event_id text, OUT first_seen timestamptz)
RETURNS SETOF record
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'cdp_explain_identity';
COMMENT ON FUNCTION cdp.explain_identity(text, text, integer) IS
    'The shortest path of merged edges from an identifier to its profile''s strongest identifier';

CREATE FUNCTION cdp.unlink(a_type text, a_value text, b_type text, b_value text, workspace_id integer DEFAULT 1,
    OUT profile_id bigint, OUT identifiers integer)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'cdp_unlink';
COMMENT ON FUNCTION cdp.unlink(text, text, text, text, integer) IS
    'Removes the edge between two identifiers and splits their profile if it falls apart; returns the parts';

CREATE FUNCTION cdp.block_identifier(id_type text, value text, workspace_id integer DEFAULT 1,
    OUT profile_id bigint, OUT identifiers integer)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'cdp_block_identifier';
COMMENT ON FUNCTION cdp.block_identifier(text, text, integer) IS
    'Blocks a value from linking, cuts its edges and splits its profile if it falls apart; returns the parts';

CREATE FUNCTION cdp.connected_components(edges_query text, apply_rules boolean DEFAULT false,
    workspace_id integer DEFAULT 1, OUT node text, OUT component text)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'cdp_connected_components';
COMMENT ON FUNCTION cdp.connected_components(text, boolean, integer) IS
    'Connected components of any query yielding (a, b) pairs of identifiers; component = smallest node in it';

-- from extension/45_traits.sql
-- Profiles: the survivorship rules of traits and cdp.merge_traits, the aggregate that folds a
-- group's trait objects into one golden record by those rules.

CREATE TABLE cdp.trait_rules (
    workspace_id integer NOT NULL DEFAULT 1,
    trait text NOT NULL,                    -- a top-level key of the traits object
    rule text NOT NULL CHECK (rule IN ('latest', 'earliest', 'most_frequent', 'source_priority', 'max', 'min', 'union')),
    PRIMARY KEY (workspace_id, trait)
);
COMMENT ON TABLE cdp.trait_rules IS
    'Which value of a trait survives into the golden record; a trait without a row: the latest by event time';
SELECT pg_catalog.pg_extension_config_dump('cdp.trait_rules', '');

-- A rule that is not one of the seven is refused with the list of them (the CHECK stays as
-- the last word).
CREATE FUNCTION cdp_internal.check_trait_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.rule IS NULL OR NEW.rule NOT IN ('latest', 'earliest', 'most_frequent', 'source_priority', 'max', 'min', 'union') THEN
        RAISE EXCEPTION 'unknown survivorship rule "%" for trait "%"', NEW.rule, NEW.trait
            USING ERRCODE = 'check_violation',
                  DETAIL = 'cdp.trait_rules.rule decides which value of the trait survives into the golden record.',
                  HINT = 'Use latest, earliest, most_frequent, source_priority, max, min or union.';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trait_rules_check BEFORE INSERT OR UPDATE ON cdp.trait_rules
    FOR EACH ROW EXECUTE FUNCTION cdp_internal.check_trait_rule();

-- Passing a group's state between processes costs about as much as folding a thousand
-- operators: the planner then splits the work across workers only when groups are few and
-- large, where it pays (with a group per profile, every state would cross over).
CREATE FUNCTION cdp_internal.merge_traits_combine(internal, internal) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 1000 AS 'MODULE_PATHNAME', 'cdp_merge_traits_combine';
CREATE FUNCTION cdp_internal.merge_traits_serialize(internal) RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE COST 1000 AS 'MODULE_PATHNAME', 'cdp_merge_traits_serialize';
CREATE FUNCTION cdp_internal.merge_traits_deserialize(bytea, internal) RETURNS internal
LANGUAGE C STRICT PARALLEL SAFE COST 1000 AS 'MODULE_PATHNAME', 'cdp_merge_traits_deserialize';
CREATE FUNCTION cdp_internal.merge_traits_final(internal) RETURNS jsonb
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_traits_final';
CREATE FUNCTION cdp_internal.merge_traits_trans(internal, jsonb, timestamptz) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_traits_trans';
CREATE AGGREGATE cdp.merge_traits(traits jsonb, ts timestamptz) (
    SFUNC = cdp_internal.merge_traits_trans, STYPE = internal, FINALFUNC = cdp_internal.merge_traits_final,
    COMBINEFUNC = cdp_internal.merge_traits_combine, SERIALFUNC = cdp_internal.merge_traits_serialize,
    DESERIALFUNC = cdp_internal.merge_traits_deserialize, SSPACE = 2048, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.merge_traits(jsonb, timestamptz) IS
    'The golden record of trait objects: per trait the value its rule in cdp.trait_rules keeps (latest by default)';
CREATE FUNCTION cdp_internal.merge_traits_trans(internal, jsonb, timestamptz, integer) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_traits_trans';
CREATE AGGREGATE cdp.merge_traits(traits jsonb, ts timestamptz, source_priority integer) (
    SFUNC = cdp_internal.merge_traits_trans, STYPE = internal, FINALFUNC = cdp_internal.merge_traits_final,
    COMBINEFUNC = cdp_internal.merge_traits_combine, SERIALFUNC = cdp_internal.merge_traits_serialize,
    DESERIALFUNC = cdp_internal.merge_traits_deserialize, SSPACE = 2048, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.merge_traits(jsonb, timestamptz, integer) IS
    'The golden record of trait objects: per trait the value its rule in cdp.trait_rules keeps (latest by default)';
CREATE FUNCTION cdp_internal.merge_traits_trans(internal, jsonb, timestamptz, integer, integer) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_traits_trans';
CREATE AGGREGATE cdp.merge_traits(traits jsonb, ts timestamptz, source_priority integer, workspace_id integer) (
    SFUNC = cdp_internal.merge_traits_trans, STYPE = internal, FINALFUNC = cdp_internal.merge_traits_final,
    COMBINEFUNC = cdp_internal.merge_traits_combine, SERIALFUNC = cdp_internal.merge_traits_serialize,
    DESERIALFUNC = cdp_internal.merge_traits_deserialize, SSPACE = 2048, PARALLEL = SAFE);
COMMENT ON AGGREGATE cdp.merge_traits(jsonb, timestamptz, integer, integer) IS
    'The golden record of trait objects: per trait the value its rule in cdp.trait_rules keeps (latest by default)';

-- The state behind a golden record, for keeping records (a profile's, stored) and combining them
-- later: the state of a group's rows, the record a state stands for, and two states as one.
CREATE FUNCTION cdp_internal.merge_traits_state_final(internal) RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_traits_serialize';
CREATE FUNCTION cdp_internal.merge_traits_trans(internal, jsonb, timestamptz, integer, integer, text, text) RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_traits_trans';
CREATE AGGREGATE cdp_internal.merge_traits_state(traits jsonb, ts timestamptz, source_priority integer, workspace_id integer,
                                                 source text, event_id text) (
    SFUNC = cdp_internal.merge_traits_trans, STYPE = internal, FINALFUNC = cdp_internal.merge_traits_state_final,
    COMBINEFUNC = cdp_internal.merge_traits_combine, SERIALFUNC = cdp_internal.merge_traits_serialize,
    DESERIALFUNC = cdp_internal.merge_traits_deserialize, SSPACE = 2048, PARALLEL = SAFE);
CREATE FUNCTION cdp_internal.traits_of(state bytea) RETURNS jsonb
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_traits_of';
CREATE FUNCTION cdp_internal.trait_sources_of(state bytea) RETURNS jsonb
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_trait_sources_of';
CREATE FUNCTION cdp_internal.merge_trait_states(a bytea, b bytea) RETURNS bytea
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_merge_trait_states';

-- The golden record of every profile, kept by ingest in the same transaction as the events
-- (cdp.update_profiles): the merge state of the traits its events carried (identify and group
-- traits, context.traits), and when it was first and last seen. A merge folds the absorbed
-- profile's record into the survivor's; a split rebuilds the parts' records from their events.
CREATE TABLE cdp_internal.profile_state (
    workspace_id integer NOT NULL,
    profile_id bigint NOT NULL,
    traits bytea NOT NULL,                -- cdp_internal.traits_of(traits) is the record
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, profile_id)
) WITH (fillfactor = 70);                 -- rewritten by every batch that sees the profile: heap-only updates
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.profile_state', '');

CREATE VIEW cdp.profile_records AS
SELECT p.workspace_id, p.profile_id, coalesce(cdp_internal.traits_of(s.traits), '{}'::jsonb) AS traits,
       coalesce(cdp_internal.trait_sources_of(s.traits), '{}'::jsonb) AS trait_sources, s.first_seen, s.last_seen
FROM cdp.profiles p LEFT JOIN cdp_internal.profile_state s USING (workspace_id, profile_id)
WHERE p.merged_into IS NULL;
COMMENT ON VIEW cdp.profile_records IS
    'The golden record of each live profile: its traits by the rules of cdp.trait_rules, where and when each came from, first and last seen';

-- The records of some profiles rebuilt from their events (after a split: each part keeps what
-- its own identifiers' events said).
CREATE FUNCTION cdp_internal.recompute_profile_records(workspace integer, profiles bigint[]) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM cdp_internal.profile_state WHERE workspace_id = workspace AND profile_id = ANY (profiles);
INSERT INTO cdp_internal.profile_state (workspace_id, profile_id, traits, first_seen, last_seen)
SELECT workspace, e.current_profile_id,
       cdp_internal.merge_traits_state(t.traits, e."timestamp", NULL, workspace, t.source, e.event_id),
       min(e."timestamp"), max(e."timestamp")
FROM cdp.events_by_profile e
CROSS JOIN LATERAL (VALUES
    (CASE WHEN e.type IN ('identify', 'group') AND jsonb_typeof(e.traits) = 'object' THEN e.traits END, e.type),
    (CASE WHEN jsonb_typeof(e.context -> 'traits') = 'object' THEN e.context -> 'traits' END, 'context.traits'))
  AS t(traits, source)
WHERE e.workspace_id = workspace AND e.current_profile_id = ANY (profiles)
GROUP BY e.current_profile_id;
$$;

CREATE FUNCTION cdp.rebuild_profile_records(workspace_id integer DEFAULT 1) RETURNS bigint
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cdp_rebuild_profile_records';
COMMENT ON FUNCTION cdp.rebuild_profile_records(integer) IS
    'Rebuilds every live profile''s record from its events (after ingest with cdp.update_profiles off, or new trait rules); returns how many';

-- from extension/50_analytics.sql
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
            WHERE e.workspace_id = $4 AND e."timestamp" >= coalesce($5, '-infinity')
              AND e."timestamp" < coalesce($6, 'infinity') AND coalesce(e.event, e.name) = ANY ($1)
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
    $q$, grouping, conditions)
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
            WHERE e.workspace_id = $2 AND e."timestamp" >= coalesce($4, '-infinity')
              AND e."timestamp" < coalesce($5, 'infinity')
              -- only the sessions where the event happened are ordered and windowed
              AND e.session_id IN (SELECT s.session_id FROM cdp.events s
                                   WHERE s.workspace_id = $2 AND s."timestamp" >= coalesce($4, '-infinity')
                                     AND s."timestamp" < coalesce($5, 'infinity')
                                     AND coalesce(s.event, s.name, s.type) = $1)
        ), paths AS (
            SELECT f.person,
                   CASE WHEN coalesce(cardinality(f.around), 0) = $3 THEN f.around
                        WHEN $6 = 'next' THEN coalesce(f.around, '{}') || '(end)'::text
                        ELSE '(start)'::text || coalesce(f.around, '{}') END AS path
            FROM framed f WHERE f.label = $1
        )
        SELECT p.path, count(*), count(DISTINCT p.person), round(count(*) / sum(count(*)) OVER (), 4)
        FROM paths p GROUP BY p.path ORDER BY count(*) DESC, p.path COLLATE "C" LIMIT $7
    $q$, frame)
    USING start_event, workspace_id, depth, since, until, direction, top_n;
END;
$$;
COMMENT ON FUNCTION cdp.paths(text, text, integer, integer, timestamptz, timestamptz, integer) IS
    'Top paths of events after (or before) an event within sessions, with how often and by how many people';

-- from extension/90_maintenance.sql
-- Scheduled work, called by any scheduler (pg_cron where installed): never a hidden thread.

-- Forgets messageIds older than cdp.dedup_window, drops session states nobody can continue,
-- and creates next month's events partition ahead of time.
CREATE FUNCTION cdp.tick(OUT task text, OUT affected bigint)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dedup_window text := coalesce(current_setting('cdp.dedup_window', true), '7 days');
    session_timeout interval := coalesce(current_setting('cdp.session_timeout', true), '30 minutes')::interval;
    n bigint;
BEGIN
    IF lower(dedup_window) NOT IN ('infinity', 'forever') THEN
        DELETE FROM cdp_internal.message_ids WHERE received_at < now() - dedup_window::interval;
        GET DIAGNOSTICS n = ROW_COUNT;
        task := 'forget message ids older than ' || dedup_window; affected := n; RETURN NEXT;
    END IF;

    -- A state idle for longer than the timeout only tells that the next event opens a new
    -- session, which an absent state tells as well (plus a day of grace for late events).
    DELETE FROM cdp_internal.session_state WHERE last_seen < now() - session_timeout - interval '1 day';
    GET DIAGNOSTICS n = ROW_COUNT;
    task := 'drop idle session states'; affected := n; RETURN NEXT;

    SELECT count(*) INTO n FROM pg_inherits WHERE inhparent = 'cdp.events'::regclass;
    PERFORM cdp_internal.ensure_events_partition(now() + interval '1 month');
    task := 'create next month''s events partition';
    SELECT count(*) - n INTO affected FROM pg_inherits WHERE inhparent = 'cdp.events'::regclass;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION cdp.tick() IS 'Periodic maintenance: dedup window, idle sessions, partitions ahead of time';

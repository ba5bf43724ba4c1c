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
SECURITY DEFINER  -- a cdp_ingest role writes through it and nothing else; it checks the workspace is the caller's
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
SECURITY DEFINER
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
    -- The merged edge that brought it into the graph, held in its row (see cdp.identity_edges):
    -- the identifier at the other end, and the edge's source, event and first and last seen.
    via_type text COLLATE "C",
    via_value text COLLATE "C",
    via_source text,
    via_event_id text,
    via_first_seen timestamptz,
    via_last_seen timestamptz,
    CHECK ((via_type IS NULL) = (via_value IS NULL) AND (via_type IS NULL) = (via_first_seen IS NULL)
           AND (via_type IS NULL) = (via_last_seen IS NULL) AND (via_type IS NULL) = (via_source IS NULL)),
    -- Ingest looks identifiers up by value and counts a profile's identifiers by type: both
    -- indexes carry what those lookups read, so they are index-only scans.
    PRIMARY KEY (workspace_id, id_type, id_value) INCLUDE (profile_id)
);
CREATE INDEX identifiers_profile_idx ON cdp.identifiers (workspace_id, profile_id) INCLUDE (id_type);
COMMENT ON TABLE cdp.identifiers IS 'Every identifier seen, normalised, with the profile it belongs to now';
SELECT pg_catalog.pg_extension_config_dump('cdp.identifiers', '');

-- An edge between two identifiers seen together, stored once per pair (a before b, by type then
-- value). merged = false: the rules refused it, and reason says why. Most edges join a new
-- identifier to a known one (a new device's first identify), and such an edge, when it merges,
-- is held in the new identifier's row (cdp.identifiers.via_*): writing it costs no index entry
-- of its own. The others are rows of cdp_internal.identity_edges; the view cdp.identity_edges
-- (with the roles, in 58_access.sql) shows both.
CREATE TABLE cdp_internal.identity_edges (
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
-- Refused edges by their b end. A merged edge joins two identifiers of one profile (a merge
-- moves a whole profile, a split follows the merged edges), so it is found from its a end among
-- that profile's identifiers (cdp_internal.edges_touching): merged edges, nearly all of them,
-- need no second index, and an edge ingest merges writes one index entry, not two. The edges a
-- person cut are among these, and every batch that links two stored identifiers probes them.
CREATE INDEX identity_edges_refused_idx ON cdp_internal.identity_edges (workspace_id, b_type, b_value, a_type, a_value)
    WHERE NOT merged;
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.identity_edges', '');

-- The edges held in identifiers' rows, a and b in edge order, with the holder and its profile.
CREATE VIEW cdp_internal.held_edges AS
SELECT i.workspace_id, i.id_type, i.id_value, i.profile_id, i.via_type, i.via_value,
       CASE WHEN o.holder_first THEN i.id_type ELSE i.via_type END AS a_type,
       CASE WHEN o.holder_first THEN i.id_value ELSE i.via_value END AS a_value,
       CASE WHEN o.holder_first THEN i.via_type ELSE i.id_type END AS b_type,
       CASE WHEN o.holder_first THEN i.via_value ELSE i.id_value END AS b_value,
       i.via_source AS source, i.via_event_id AS event_id, i.via_first_seen AS first_seen,
       i.via_last_seen AS last_seen
FROM cdp.identifiers i CROSS JOIN LATERAL (SELECT (i.id_type, i.id_value) < (i.via_type, i.via_value) AS holder_first) o
WHERE i.via_type IS NOT NULL;

-- The edges with an end among the given identifiers (types[i], vals[i]), whole: by the a end
-- (the primary key), refused ones by the b end (their index), merged ones by the b end from
-- the a ends of the b end's profile; held ones by their holder, and by the other end from the
-- holders in its profile.
CREATE FUNCTION cdp_internal.edges_touching(workspace integer, types text[], vals text[])
RETURNS TABLE (workspace_id integer, a_type text, a_value text, b_type text, b_value text, source text, event_id text,
               first_seen timestamptz, last_seen timestamptz, merged boolean, reason text)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
WITH given AS (SELECT * FROM unnest(types, vals) AS g(t, v))
SELECT e.* FROM given g JOIN cdp_internal.identity_edges e
    ON e.workspace_id = workspace AND e.a_type = g.t AND e.a_value = g.v
UNION
SELECT e.* FROM given g JOIN cdp_internal.identity_edges e
    ON e.workspace_id = workspace AND e.b_type = g.t AND e.b_value = g.v AND NOT e.merged
UNION
SELECT e.* FROM given g
JOIN cdp.identifiers ib ON ib.workspace_id = workspace AND ib.id_type = g.t AND ib.id_value = g.v
JOIN cdp.identifiers ia ON ia.workspace_id = workspace AND ia.profile_id = ib.profile_id
JOIN cdp_internal.identity_edges e ON e.workspace_id = workspace AND e.a_type = ia.id_type AND e.a_value = ia.id_value
    AND e.b_type = g.t AND e.b_value = g.v AND e.merged
UNION
SELECT h.workspace_id, h.a_type, h.a_value, h.b_type, h.b_value, h.source, h.event_id, h.first_seen, h.last_seen, true, NULL
FROM given g JOIN cdp_internal.held_edges h ON h.workspace_id = workspace AND h.id_type = g.t AND h.id_value = g.v
UNION
SELECT h.workspace_id, h.a_type, h.a_value, h.b_type, h.b_value, h.source, h.event_id, h.first_seen, h.last_seen, true, NULL
FROM given g
JOIN cdp.identifiers ib ON ib.workspace_id = workspace AND ib.id_type = g.t AND ib.id_value = g.v
JOIN cdp_internal.held_edges h ON h.workspace_id = workspace AND h.profile_id = ib.profile_id
    AND h.via_type = g.t AND h.via_value = g.v
$$;

-- Cuts the given edges (a_types[i], a_vals[i], b_types[i], b_vals[i]) wherever they are held:
-- with a reason, each stays as a refused edge (one held in an identifier's row moves to
-- cdp_internal.identity_edges); without one (erasure), each is deleted. Returns how many were.
CREATE FUNCTION cdp_internal.cut_edges(workspace integer, a_types text[], a_vals text[], b_types text[], b_vals text[],
                                       reason text)
RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
WITH given AS (SELECT * FROM unnest(a_types, a_vals, b_types, b_vals) AS g(at, av, bt, bv)),
held AS (
    SELECT h.* FROM given g JOIN cdp_internal.held_edges h ON h.workspace_id = workspace
        AND h.id_type = g.at AND h.id_value = g.av AND h.via_type = g.bt AND h.via_value = g.bv
    UNION ALL
    SELECT h.* FROM given g JOIN cdp_internal.held_edges h ON h.workspace_id = workspace
        AND h.id_type = g.bt AND h.id_value = g.bv AND h.via_type = g.at AND h.via_value = g.av),
released AS (
    UPDATE cdp.identifiers i SET via_type = NULL, via_value = NULL, via_source = NULL, via_event_id = NULL,
        via_first_seen = NULL, via_last_seen = NULL
    FROM held h WHERE i.workspace_id = workspace AND i.id_type = h.id_type AND i.id_value = h.id_value),
kept AS (
    INSERT INTO cdp_internal.identity_edges (workspace_id, a_type, a_value, b_type, b_value, source, event_id,
        first_seen, last_seen, merged, reason)
    SELECT workspace, h.a_type, h.a_value, h.b_type, h.b_value, h.source, h.event_id, h.first_seen, h.last_seen,
        false, cut_edges.reason
    FROM held h WHERE cut_edges.reason IS NOT NULL),
cut AS (
    UPDATE cdp_internal.identity_edges e SET merged = false, reason = cut_edges.reason FROM given g
    WHERE cut_edges.reason IS NOT NULL AND e.workspace_id = workspace AND e.a_type = g.at AND e.a_value = g.av
        AND e.b_type = g.bt AND e.b_value = g.bv
    RETURNING 1),
gone AS (
    DELETE FROM cdp_internal.identity_edges e USING given g
    WHERE cut_edges.reason IS NULL AND e.workspace_id = workspace AND e.a_type = g.at AND e.a_value = g.av
        AND e.b_type = g.bt AND e.b_value = g.bv
    RETURNING 1)
SELECT (SELECT count(*) FROM held) + (SELECT count(*) FROM cut) + (SELECT count(*) FROM gone)
$$;

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

-- Takes the workspace's identity lock until the transaction ends: every writer of the identity
-- tables and the profile records takes it first.
CREATE FUNCTION cdp_internal.lock_identity(workspace_id integer) RETURNS void
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cdp_lock_identity';

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

-- from extension/44_computed.sql
-- Computed traits: what a profile's events add up to (orders in 30 days, lifetime revenue, last
-- product viewed), declared once and kept by ingest as events arrive. Definitions live here;
-- the per-profile states live with the profile records (47_profiles.sql).

CREATE TABLE cdp.computed_traits (
    workspace_id integer NOT NULL DEFAULT 1,
    name text NOT NULL,                   -- [a-z0-9_]: the key in a profile's computed traits
    definition jsonb NOT NULL,            -- {"function": ..., "event": ..., "where": ..., "window": ...}
    defined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, name)
);
COMMENT ON TABLE cdp.computed_traits IS
    'Computed trait definitions; add them with cdp.define_computed_trait, which also counts the events already stored';
SELECT pg_catalog.pg_extension_config_dump('cdp.computed_traits', '');

-- An error saying what is wrong with a definition (SQLSTATE 22023, with a hint), or nothing.
CREATE FUNCTION cdp_internal.check_computed_trait(name text, definition jsonb) RETURNS void
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_check_computed_trait';

CREATE FUNCTION cdp_internal.computed_traits_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM cdp_internal.check_computed_trait(NEW.name, NEW.definition);
    RETURN NEW;
END;
$$;
CREATE TRIGGER computed_traits_check BEFORE INSERT OR UPDATE ON cdp.computed_traits
    FOR EACH ROW EXECUTE FUNCTION cdp_internal.computed_traits_check();

-- A profile's computed traits at a time, from its stored state (NULL: nothing counted yet):
-- every defined trait, 0 or null where no event counted.
CREATE FUNCTION cdp_internal.computed_of(workspace integer, state bytea, at timestamptz) RETURNS jsonb
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_computed_of';

-- The state of a group of stored events: for the workspace's definitions, or only the one named.
CREATE FUNCTION cdp_internal.computed_state_trans(internal, workspace integer, only_trait text, at timestamptz,
    type text, event text, name text, ts timestamptz, event_id text, properties jsonb, traits jsonb, context jsonb)
RETURNS internal LANGUAGE C CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'cdp_computed_state_trans';
CREATE FUNCTION cdp_internal.computed_state_final(internal) RETURNS bytea
LANGUAGE C CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'cdp_computed_state_final';
CREATE AGGREGATE cdp_internal.computed_state(workspace integer, only_trait text, at timestamptz, type text, event text,
    name text, ts timestamptz, event_id text, properties jsonb, traits jsonb, context jsonb) (
    SFUNC = cdp_internal.computed_state_trans, STYPE = internal, FINALFUNC = cdp_internal.computed_state_final);

-- Two states of one profile as one, each first rid of what no longer counts at `at`; with b
-- NULL, just that (what cdp.tick does).
CREATE FUNCTION cdp_internal.computed_merge(workspace integer, a bytea, b bytea, at timestamptz) RETURNS bytea
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_computed_merge';
-- When a windowed value of the state changes next by time passing (NULL: never).
CREATE FUNCTION cdp_internal.computed_next_expiry(state bytea) RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_computed_next_expiry';

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

-- from extension/47_profiles.sql
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

-- from extension/48_sources.sql
-- Composable sources: an existing table or view (a CRM's customers, an orders table) registered
-- with its identifier columns, trait columns and timestamp column. cdp.sync_source reads the rows
-- changed since the last sync and links them into the identity graph and the profile records,
-- with the source's name and priority, without copying the table: a purchase in `orders` and a
-- login on the website end up on one profile.

CREATE TABLE cdp.sources (
    workspace_id integer NOT NULL DEFAULT 1 REFERENCES cdp.workspaces,
    name text NOT NULL,
    relation regclass NOT NULL,
    identifiers jsonb NOT NULL,           -- identifier type -> column: {"user_id": "customer_id", "email": "email"}
    traits jsonb NOT NULL DEFAULT '{}',   -- trait -> column: {"city": "city", "plan": "plan_name"}
    timestamp_column text NOT NULL,       -- when a row last changed: syncs read past the last one seen
    priority integer NOT NULL DEFAULT 1 CHECK (priority >= 1),  -- for the source_priority rule: 1 is first
    synced_until timestamptz,             -- the newest row time synced so far
    synced_at timestamptz,
    rows_synced bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, name)
);
COMMENT ON TABLE cdp.sources IS
    'Tables and views whose rows add identifiers and traits to profiles (cdp.add_source, cdp.sync_source)';
SELECT pg_catalog.pg_extension_config_dump('cdp.sources', '');

CREATE FUNCTION cdp_internal.link_source_rows(rows jsonb, workspace_id integer, source text, priority integer,
    OUT linked integer, OUT rejected jsonb)
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cdp_link_source_rows';

-- A column of the relation, checked; an error naming what is missing otherwise.
CREATE FUNCTION cdp_internal.source_column(relation regclass, col text, what text) RETURNS regtype
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid INTO typ FROM pg_attribute a
    WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION '% column "%" does not exist in %', what, col, relation
            USING ERRCODE = 'undefined_column',
                  DETAIL = format('%s has the columns %s.', relation,
                                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                                   WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped)),
                  HINT = 'Name a column of the relation exactly (names are case-sensitive).';
    END IF;
    RETURN typ;
END;
$$;

CREATE FUNCTION cdp.add_source(name text, relation regclass, identifiers jsonb, traits jsonb DEFAULT '{}',
                               timestamp_column text DEFAULT 'updated_at', priority integer DEFAULT 1,
                               workspace_id integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    ts_type regtype;
BEGIN
    IF add_source.name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid source name "%"', add_source.name USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A source name has 1 to 63 characters a-z, 0-9 and _, starting with a letter.',
            HINT = 'Name it like a table: crm_customers, orders.';
    END IF;
    IF jsonb_typeof(add_source.identifiers) <> 'object' OR add_source.identifiers = '{}' THEN
        RAISE EXCEPTION 'source "%" has no identifier columns', add_source.name USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'identifiers maps identifier types to columns; without one, no row can join a profile.',
            HINT = 'Pass identifiers => ''{"user_id": "customer_id", "email": "email"}''.';
    END IF;
    IF jsonb_typeof(add_source.traits) <> 'object' THEN
        RAISE EXCEPTION 'traits of source "%" is not an object', add_source.name USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'traits maps trait names to columns.', HINT = 'Pass traits => ''{"city": "city"}''.';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(add_source.identifiers) UNION ALL SELECT * FROM jsonb_each(add_source.traits) LOOP
        IF jsonb_typeof(v) <> 'string' THEN
            RAISE EXCEPTION '"%" of source "%" does not name a column', k, add_source.name
                USING ERRCODE = 'invalid_parameter_value', DETAIL = format('It maps to %s.', v),
                      HINT = 'Map each identifier type and trait to a column name, as a string.';
        END IF;
        PERFORM cdp_internal.source_column(add_source.relation, v ->> 0, format('%s', k));
    END LOOP;
    FOR k IN SELECT jsonb_object_keys(add_source.identifiers) LOOP
        IF k !~ '^[a-z][a-z0-9_]*$' THEN
            RAISE EXCEPTION 'invalid identifier type "%"', k USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'Identifier types are user_id, anonymous_id, email, phone, device_id, or a custom type in a-z, 0-9 and _.',
                HINT = 'Use the type name ingest uses for the same kind of value.';
        END IF;
    END LOOP;
    ts_type := cdp_internal.source_column(add_source.relation, add_source.timestamp_column, 'timestamp');
    IF ts_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'timestamp column "%" of % is of type %', add_source.timestamp_column, add_source.relation, ts_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = 'Syncs read the rows changed since the last one by this column.',
                  HINT = 'Use a timestamptz, timestamp or date column, such as updated_at.';
    END IF;
    INSERT INTO cdp.sources (workspace_id, name, relation, identifiers, traits, timestamp_column, priority)
    VALUES (add_source.workspace_id, add_source.name, add_source.relation, add_source.identifiers, add_source.traits,
            add_source.timestamp_column, add_source.priority);
END;
$$;
COMMENT ON FUNCTION cdp.add_source(text, regclass, jsonb, jsonb, text, integer, integer) IS
    'Registers a table or view whose rows add identifiers and traits to profiles; cdp.sync_source reads it';

-- Reads the rows of a source changed since its last sync (all of them with full => true), in
-- order of their time, and links them: each row is one identify call (user_id and anonymous_id
-- as such, email and phone as traits, device_id as context.device.id, other types as
-- context.externalIds) with the mapped traits, from the source at its priority. Rows that
-- cannot join a profile (no identifier) land in cdp.rejected_events. Returns what it did.
CREATE FUNCTION cdp.sync_source(name text, workspace_id integer DEFAULT 1, full_sync boolean DEFAULT false,
    OUT rows_read bigint, OUT rows_linked bigint, OUT rows_rejected bigint, OUT synced_until timestamptz)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src cdp.sources;
    ws integer := sync_source.workspace_id;
    k text;
    col text;
    ids text[] := '{}';
    traits text[] := '{}';
    context text[] := '{}';
    external text[] := '{}';
    key_expr text;
    event_expr text;
    chunk record;
    linked record;
BEGIN
    SELECT * INTO src FROM cdp.sources s WHERE s.workspace_id = ws AND s.name = sync_source.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist in workspace %', sync_source.name, ws USING ERRCODE = 'undefined_object',
            DETAIL = 'cdp.sources lists the registered sources.', HINT = 'Register it with cdp.add_source(...).';
    END IF;
    PERFORM cdp_internal.lock_identity(ws);
    FOR k, col IN SELECT key, value ->> 0 FROM jsonb_each(src.identifiers) LOOP
        CASE k
            WHEN 'user_id' THEN ids := ids || format('''userId'', t.%I::text', col);
            WHEN 'anonymous_id' THEN ids := ids || format('''anonymousId'', t.%I::text', col);
            WHEN 'email', 'phone' THEN traits := traits || format('%L, t.%I::text', k, col);
            WHEN 'device_id' THEN context := context || format('''device'', jsonb_build_object(''id'', t.%I::text)', col);
            ELSE external := external || format('jsonb_build_object(''type'', %L, ''id'', t.%I::text)', k, col);
        END CASE;
    END LOOP;
    FOR k, col IN SELECT key, value ->> 0 FROM jsonb_each(src.traits) LOOP
        traits := traits || format('%L, t.%I', k, col);
    END LOOP;
    IF cardinality(external) > 0 THEN
        context := context || format('''externalIds'', jsonb_path_query_array(jsonb_build_array(%s), ''$[*] ? (@.id != null)'')',
                                     array_to_string(external, ', '));
    END IF;
    -- A row's name in provenance: its first identifier present (user_id first), as column=value.
    SELECT string_agg(format('%L || t.%I::text', (value ->> 0) || '=', value ->> 0), ', ' ORDER BY key <> 'user_id', key)
    INTO key_expr FROM jsonb_each(src.identifiers);
    event_expr := format(
        'jsonb_strip_nulls(jsonb_build_object(''type'', ''identify'', ''timestamp'', t.%1$I::timestamptz,'
        ' ''messageId'', concat_ws('' @ '', coalesce(%2$s), t.%1$I::timestamptz), %3$s'
        ' ''traits'', jsonb_build_object(%4$s), ''context'', jsonb_build_object(%5$s)))',
        src.timestamp_column, key_expr, CASE WHEN cardinality(ids) > 0 THEN array_to_string(ids, ', ') || ',' ELSE '' END,
        array_to_string(traits, ', '), array_to_string(context, ', '));
    rows_read := 0;
    rows_linked := 0;
    rows_rejected := 0;
    synced_until := src.synced_until;
    FOR chunk IN EXECUTE format(
        'SELECT c, jsonb_agg(e ORDER BY ts, n) AS events, max(ts) AS until, count(*) AS rows'
        ' FROM (SELECT %s AS e, t.%I::timestamptz AS ts, n, (n - 1) / 1000 AS c'
        '       FROM (SELECT t.*, row_number() OVER (ORDER BY t.%I) AS n FROM %s t WHERE t.%I::timestamptz > $1) t) x'
        ' GROUP BY c ORDER BY c',
        event_expr, src.timestamp_column, src.timestamp_column, src.relation, src.timestamp_column)
        USING CASE WHEN sync_source.full_sync THEN '-infinity'::timestamptz ELSE coalesce(src.synced_until, '-infinity') END
    LOOP
        linked := cdp_internal.link_source_rows(chunk.events, ws, src.name, src.priority);
        rows_read := rows_read + chunk.rows;
        rows_linked := rows_linked + linked.linked;
        rows_rejected := rows_rejected + jsonb_array_length(linked.rejected);
        INSERT INTO cdp.rejected_events (workspace_id, received_at, reason, detail, message_id, item_index, raw)
        SELECT ws, now(), r ->> 'reason', format('source %s: %s', src.name, r ->> 'detail'),
               CASE WHEN r ->> 'reason' <> 'suppressed' THEN chunk.events -> (r ->> 'row')::int ->> 'messageId' END,
               (chunk.c * 1000 + (r ->> 'row')::int)::int,
               -- an erased person's row is not copied here either
               CASE WHEN r ->> 'reason' <> 'suppressed' THEN (chunk.events -> (r ->> 'row')::int)::text ELSE '' END
        FROM jsonb_array_elements(linked.rejected) r;
        synced_until := greatest(synced_until, chunk.until);
    END LOOP;
    UPDATE cdp.sources s SET synced_until = sync_source.synced_until, synced_at = now(),
                             rows_synced = s.rows_synced + sync_source.rows_read
    WHERE s.workspace_id = ws AND s.name = src.name;
END;
$$;
COMMENT ON FUNCTION cdp.sync_source(text, integer, boolean) IS
    'Links the rows of a registered source changed since its last sync into identities and profile records';

CREATE FUNCTION cdp.drop_source(name text, workspace_id integer DEFAULT 1) RETURNS boolean
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM cdp.sources s WHERE s.workspace_id = drop_source.workspace_id AND s.name = drop_source.name RETURNING true;
END;
COMMENT ON FUNCTION cdp.drop_source(text, integer) IS
    'Unregisters a source; what its rows already linked stays (unlink or block identifiers to undo it)';

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

-- from extension/52_privacy.sql
-- Privacy: erasure with a receipt and tombstones that suppress the person's next events,
-- subject access, and consent per purpose. Identifiers of erased people are kept only as keyed
-- hashes (HMAC-SHA256 with a secret the DBA sets per workspace).

-- The workspace's secret. Readable by no one but the owner of the extension's objects.
CREATE TABLE cdp_internal.secrets (
    workspace_id integer PRIMARY KEY REFERENCES cdp.workspaces,
    secret bytea NOT NULL CHECK (length(secret) >= 16),
    set_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON cdp_internal.secrets FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.secrets', '');

CREATE FUNCTION cdp.set_secret(secret text, workspace_id integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF length(secret) < 16 THEN
        RAISE EXCEPTION 'the secret is too short' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('It has %s characters; keyed hashes of erased identifiers need at least 16.', length(secret)),
            HINT = 'Use a long random string, e.g. encode(gen_random_bytes(32), ''hex'') from pgcrypto.';
    END IF;
    IF EXISTS (SELECT FROM cdp.erasure_tombstones t WHERE t.workspace_id = set_secret.workspace_id) THEN
        RAISE EXCEPTION 'the workspace already has tombstones made with its secret'
            USING ERRCODE = 'object_in_use',
                  DETAIL = 'Changing the secret would make every tombstone stop matching: erased people''s events would come back.',
                  HINT = 'Keep the secret; it is stored only in cdp_internal.secrets.';
    END IF;
    INSERT INTO cdp_internal.secrets (workspace_id, secret) VALUES (set_secret.workspace_id, convert_to(secret, 'UTF8'))
    ON CONFLICT ON CONSTRAINT secrets_pkey DO UPDATE SET secret = excluded.secret, set_at = now();
END;
$$;
COMMENT ON FUNCTION cdp.set_secret(text, integer) IS 'Sets the workspace''s secret for keyed hashes of erased identifiers';

CREATE FUNCTION cdp_internal.hmac_sha256(key bytea, data text) RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_hmac_sha256';

-- The keyed hash of an identifier (type and normalised value) in a workspace.
CREATE FUNCTION cdp_internal.keyed_hash(workspace integer, id_type text, id_value text) RETURNS bytea
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key bytea;
BEGIN
    SELECT s.secret INTO key FROM cdp_internal.secrets s WHERE s.workspace_id = workspace;
    IF key IS NULL THEN
        RAISE EXCEPTION 'the workspace has no secret' USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Erasure keeps only keyed hashes of the person''s identifiers, and the key is the workspace''s secret.',
            HINT = 'Set one first: SELECT cdp.set_secret(''<a long random string>'', workspace_id => ...).';
    END IF;
    RETURN cdp_internal.hmac_sha256(key, id_type || ':' || id_value);
END;
$$;

-- Identifiers of erased people: new events carrying one are suppressed at ingest.
CREATE TABLE cdp.erasure_tombstones (
    workspace_id integer NOT NULL,
    id_type text NOT NULL,
    keyed_hash bytea NOT NULL,            -- cdp_internal.keyed_hash(workspace, type, normalised value)
    request_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, keyed_hash)
);
COMMENT ON TABLE cdp.erasure_tombstones IS 'Keyed hashes of erased identifiers; events carrying one are suppressed at ingest';
SELECT pg_catalog.pg_extension_config_dump('cdp.erasure_tombstones', '');

-- Requests under GDPR, CCPA and their peers, as rows a DBA can follow. The subject is kept as
-- a keyed hash only.
CREATE TABLE cdp.privacy_requests (
    request_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('erasure', 'access', 'unsuppress')),
    id_type text NOT NULL,
    subject_hash bytea NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'done')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    receipt jsonb
);
COMMENT ON TABLE cdp.privacy_requests IS 'Erasure, access and unsuppress requests with their status and receipts';
SELECT pg_catalog.pg_extension_config_dump('cdp.privacy_requests', '');
SELECT pg_catalog.pg_extension_config_dump('cdp.privacy_requests_request_id_seq', '');

-- Consent per profile and purpose, latest by time: from context.consent.categoryPreferences at
-- ingest (a category not listed is not granted) and from cdp.set_consent.
CREATE TABLE cdp.consent (
    workspace_id integer NOT NULL,
    profile_id bigint NOT NULL,
    purpose text NOT NULL,
    granted boolean NOT NULL,
    source text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, profile_id, purpose)
);
COMMENT ON TABLE cdp.consent IS 'Each profile''s consent per purpose (marketing, analytics, ...), the latest with its source and time';
SELECT pg_catalog.pg_extension_config_dump('cdp.consent', '');

-- Records consent decisions (profile, purpose, granted, at) from a source, the latest winning.
CREATE FUNCTION cdp_internal.record_consent(workspace integer, profiles bigint[], purposes text[], granted boolean[],
                                            times timestamptz[], source text) RETURNS void
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO cdp.consent AS c (workspace_id, profile_id, purpose, granted, source, at)
SELECT DISTINCT ON (u.p, u.purpose) workspace, u.p, u.purpose, u.g, source, u.t
FROM unnest(profiles, purposes, granted, times) AS u(p, purpose, g, t)
ORDER BY u.p, u.purpose, u.t DESC
ON CONFLICT (workspace_id, profile_id, purpose) DO UPDATE
SET granted = excluded.granted, source = excluded.source, at = excluded.at
WHERE c.at <= excluded.at;
$$;

CREATE FUNCTION cdp.set_consent(id_type text, value text, purpose text, granted boolean, source text DEFAULT 'api',
                                workspace_id integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    person bigint;
BEGIN
    PERFORM cdp_internal.lock_identity(set_consent.workspace_id);
    person := cdp.resolve(set_consent.id_type, set_consent.value, set_consent.workspace_id);
    IF person IS NULL THEN
        RAISE EXCEPTION 'identifier % "%" belongs to no profile', set_consent.id_type, set_consent.value
            USING ERRCODE = 'no_data_found', DETAIL = 'Consent is kept per profile.',
                  HINT = 'Check the type and value; cdp.normalise_identifier shows the stored form.';
    END IF;
    PERFORM cdp_internal.record_consent(set_consent.workspace_id, ARRAY[person], ARRAY[set_consent.purpose],
                                        ARRAY[set_consent.granted], ARRAY[now()], set_consent.source);
    -- Segments that need the purpose follow at once.
    PERFORM cdp_internal.evaluate_segments(set_consent.workspace_id, ARRAY[person], now(), 'consent ' || set_consent.purpose);
END;
$$;
COMMENT ON FUNCTION cdp.set_consent(text, text, text, boolean, text, integer) IS
    'Records a person''s consent for a purpose; segments that need the purpose follow';

-- The live profile of an identifier and every profile merged into it, or none.
CREATE FUNCTION cdp_internal.person_profiles(workspace integer, root bigint) RETURNS bigint[]
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
WITH RECURSIVE person AS (
    SELECT root AS profile_id
    UNION
    SELECT p.profile_id FROM cdp.profiles p JOIN person ON p.workspace_id = workspace AND p.merged_into = person.profile_id)
SELECT array_agg(profile_id ORDER BY profile_id) FROM person;
$$;

-- Erases a person: resolves the identifier to its profile (and the profiles merged into it),
-- writes an exit from every segment they are in (cause erased), then deletes in one
-- transaction every row they own; keeps keyed hashes of their identifiers as tombstones, so
-- that new events carrying one are suppressed at ingest; returns the receipt, also kept in
-- cdp.privacy_requests. An identifier nobody has is still tombstoned.
CREATE FUNCTION cdp.forget(id_type text, value text, workspace_id integer DEFAULT 1) RETURNS jsonb
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ws integer := forget.workspace_id;
    normalised text := cdp.normalise_identifier(forget.id_type, forget.value);
    root bigint;
    person bigint[];
    types text[];
    vals text[];
    request bigint;
    counts jsonb := '{}';
    gone_events jsonb;
    n bigint;
    answer jsonb;
BEGIN
    IF normalised IS NULL THEN
        RAISE EXCEPTION '"%" is not a valid %', forget.value, forget.id_type USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('It does not normalise to an identifier of type %s.', forget.id_type),
            HINT = 'Emails need an @; phone numbers a country code or cdp.phone_default_country.';
    END IF;
    PERFORM cdp_internal.keyed_hash(ws, forget.id_type, normalised);  -- fails early without a secret
    PERFORM cdp_internal.lock_identity(ws);
    INSERT INTO cdp.privacy_requests (workspace_id, kind, id_type, subject_hash, status)
    VALUES (ws, 'erasure', forget.id_type, cdp_internal.keyed_hash(ws, forget.id_type, normalised), 'pending')
    RETURNING request_id INTO request;

    root := cdp.resolve(forget.id_type, normalised, ws);
    person := coalesce(cdp_internal.person_profiles(ws, root), '{}');
    SELECT coalesce(array_agg(i.id_type ORDER BY i.id_type, i.id_value), '{}'), coalesce(array_agg(i.id_value ORDER BY i.id_type, i.id_value), '{}')
    INTO types, vals
    FROM (SELECT i.id_type, i.id_value FROM cdp.identifiers i WHERE i.workspace_id = ws AND i.profile_id = ANY (person)
          UNION SELECT forget.id_type, normalised) i;

    -- Downstream tools learn first: their past feed entries go, an exit per membership stays.
    DELETE FROM cdp.segment_changes c WHERE c.workspace_id = ws AND c.profile_id = ANY (person);
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('feed_entries', n);
    WITH gone AS (DELETE FROM cdp.segment_members m WHERE m.workspace_id = ws AND m.profile_id = ANY (person)
                  RETURNING m.segment_id, m.profile_id)
    INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)
    SELECT ws, g.segment_id, s.name, g.profile_id, 'exited', now(), 'erased'
    FROM gone g JOIN cdp.segments s USING (segment_id) ORDER BY g.profile_id, g.segment_id;
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('segment_memberships', n);

    WITH gone AS (
        DELETE FROM cdp.events e WHERE e.workspace_id = ws
          AND (e.profile_id = ANY (person)
               OR e.user_id IN (SELECT v FROM unnest(types, vals) AS u(t, v) WHERE t = 'user_id')
               OR e.anonymous_id IN (SELECT v FROM unnest(types, vals) AS u(t, v) WHERE t = 'anonymous_id'))
        RETURNING e.event_id),
    flagged AS (  -- a violation's message may quote a value of theirs
        DELETE FROM cdp.tracking_violations t WHERE t.workspace_id = ws AND t.event_id IN (SELECT event_id FROM gone)
        RETURNING 1)
    SELECT jsonb_build_object('events', (SELECT count(*) FROM gone), 'tracking_violations', (SELECT count(*) FROM flagged))
    INTO gone_events;
    counts := counts || gone_events;
    -- Rejected items that carry any of their identifiers (compared without case: emails are
    -- stored lowercased, sent in any case).
    DELETE FROM cdp.rejected_events r WHERE r.workspace_id = ws
      AND EXISTS (SELECT FROM unnest(vals) AS v WHERE strpos(lower(r.raw), lower(v)) > 0);
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('rejected_events', n);
    SELECT cdp_internal.cut_edges(ws, array_agg(t.a_type), array_agg(t.a_value), array_agg(t.b_type), array_agg(t.b_value), NULL)
    INTO n FROM cdp_internal.edges_touching(ws, types, vals) t;
    counts := counts || jsonb_build_object('identity_edges', n);
    DELETE FROM cdp.identity_changes c WHERE c.workspace_id = ws
      AND (c.profile_id = ANY (person) OR c.other_profile_id = ANY (person)
           OR (c.a_type, c.a_value) IN (SELECT * FROM unnest(types, vals)) OR (c.b_type, c.b_value) IN (SELECT * FROM unnest(types, vals)));
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('identity_changes', n);
    DELETE FROM cdp.identifiers i WHERE i.workspace_id = ws AND (i.id_type, i.id_value) IN (SELECT * FROM unnest(types, vals));
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('identifiers', n);
    DELETE FROM cdp_internal.profile_state s WHERE s.workspace_id = ws AND s.profile_id = ANY (person);
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('profile_records', n);
    DELETE FROM cdp.consent c WHERE c.workspace_id = ws AND c.profile_id = ANY (person);
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('consent', n);
    DELETE FROM cdp_internal.trigger_state t WHERE t.profile_id = ANY (person)
      AND t.segment_id IN (SELECT s.segment_id FROM cdp.segments s WHERE s.workspace_id = ws);
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('trigger_occurrences', n);
    DELETE FROM cdp_internal.session_state s WHERE s.workspace_id = ws
      AND s.actor IN (SELECT CASE t WHEN 'anonymous_id' THEN 'a:' ELSE 'u:' END || v
                      FROM unnest(types, vals) AS u(t, v) WHERE t IN ('anonymous_id', 'user_id'));
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('sessions', n);
    DELETE FROM cdp.profiles p WHERE p.workspace_id = ws AND p.profile_id = ANY (person);
    GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('profiles', n);

    INSERT INTO cdp.erasure_tombstones (workspace_id, id_type, keyed_hash, request_id)
    SELECT ws, u.t, cdp_internal.keyed_hash(ws, u.t, u.v), request FROM unnest(types, vals) AS u(t, v)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    answer := jsonb_build_object('request_id', request, 'kind', 'erasure', 'workspace_id', ws,
                                  'subject', jsonb_build_object('id_type', forget.id_type,
                                      'keyed_hash', encode(cdp_internal.keyed_hash(ws, forget.id_type, normalised), 'hex')),
                                  'identifiers_suppressed', n, 'deleted', counts, 'at', now());
    UPDATE cdp.privacy_requests r SET status = 'done', finished_at = now(), receipt = answer
    WHERE r.request_id = request;
    RETURN answer;
END;
$$;
COMMENT ON FUNCTION cdp.forget(text, text, integer) IS
    'Erases a person everywhere, tombstones their identifiers (new events are suppressed) and returns the receipt';

CREATE FUNCTION cdp.unsuppress(id_type text, value text, workspace_id integer DEFAULT 1) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h bytea := cdp_internal.keyed_hash(unsuppress.workspace_id, unsuppress.id_type,
                                       coalesce(cdp.normalise_identifier(unsuppress.id_type, unsuppress.value), unsuppress.value));
BEGIN
    DELETE FROM cdp.erasure_tombstones t WHERE t.workspace_id = unsuppress.workspace_id AND t.keyed_hash = h;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO cdp.privacy_requests (workspace_id, kind, id_type, subject_hash, status, finished_at)
    VALUES (unsuppress.workspace_id, 'unsuppress', unsuppress.id_type, h, 'done', now());
    RETURN true;
END;
$$;
COMMENT ON FUNCTION cdp.unsuppress(text, text, integer) IS 'Lifts the tombstone of one identifier: its events are accepted again';

-- Everything held on the person an identifier belongs to, for a subject access request.
CREATE FUNCTION cdp.subject_access(id_type text, value text, workspace_id integer DEFAULT 1) RETURNS jsonb
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ws integer := subject_access.workspace_id;
    person bigint[] := cdp_internal.person_profiles(ws, cdp.resolve(subject_access.id_type, subject_access.value, ws));
    result jsonb;
BEGIN
    IF person IS NULL THEN
        RAISE EXCEPTION 'identifier % "%" belongs to no profile', subject_access.id_type, subject_access.value
            USING ERRCODE = 'no_data_found', DETAIL = 'Nothing is held under it (never seen, erased, or blocked).',
                  HINT = 'Check the type and value; cdp.normalise_identifier shows the stored form.';
    END IF;
    INSERT INTO cdp.privacy_requests (workspace_id, kind, id_type, subject_hash, status, finished_at)
    SELECT ws, 'access', subject_access.id_type,
           cdp_internal.hmac_sha256(coalesce(s.secret, '\x00'::bytea), subject_access.id_type || ':' || subject_access.value),
           'done', now()
    FROM (SELECT (SELECT secret FROM cdp_internal.secrets k WHERE k.workspace_id = ws) AS secret) s;
    SELECT jsonb_build_object(
        'profile', cdp.profile(subject_access.id_type, subject_access.value, ws, now(), 0),
        'events', coalesce((SELECT jsonb_agg(to_jsonb(e) - 'current_profile_id' ORDER BY e."timestamp", e.event_id)
                            FROM cdp.events_by_profile e WHERE e.workspace_id = ws AND e.current_profile_id = ANY (person)), '[]'),
        -- at either end: what erasure would delete
        'identity_edges', coalesce((SELECT jsonb_agg(to_jsonb(g) ORDER BY g.first_seen, g.a_value, g.b_value)
                                    FROM (SELECT array_agg(i.id_type) AS t, array_agg(i.id_value) AS v FROM cdp.identifiers i
                                          WHERE i.workspace_id = ws AND i.profile_id = ANY (person)) ids
                                    CROSS JOIN cdp_internal.edges_touching(ws, ids.t, ids.v) g), '[]'),
        'consent', coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.purpose) FROM cdp.consent c
                             WHERE c.workspace_id = ws AND c.profile_id = ANY (person)), '[]'),
        'segments', coalesce((SELECT jsonb_agg(jsonb_build_object('segment', s.name, 'entered_at', m.entered_at) ORDER BY s.name)
                              FROM cdp.segment_members m JOIN cdp.segments s USING (segment_id)
                              WHERE m.workspace_id = ws AND m.profile_id = ANY (person)), '[]'),
        'segment_changes', coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.change_id) FROM cdp.segment_changes c
                                     WHERE c.workspace_id = ws AND c.profile_id = ANY (person)), '[]'))
    INTO result;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION cdp.subject_access(text, text, integer) IS 'Everything held on the person an identifier belongs to, as jsonb';

-- Tracking plans: per event name (exact casing) a JSON-Schema subset for properties and traits
-- ({"properties": {...}, "traits": {...}}), and what to do with an event that breaks it:
-- allow (nothing), flag (it lands, its violations in cdp.tracking_violations), block (it goes to
-- cdp.rejected_events with reason schema_violation and the violations).
CREATE TABLE cdp.tracking_plans (
    workspace_id integer NOT NULL DEFAULT 1 REFERENCES cdp.workspaces,
    event text NOT NULL,
    schema jsonb NOT NULL DEFAULT '{}',
    mode text NOT NULL DEFAULT 'flag' CHECK (mode IN ('allow', 'flag', 'block')),
    PRIMARY KEY (workspace_id, event)
);
COMMENT ON TABLE cdp.tracking_plans IS 'What each event may carry (JSON-Schema subset) and what happens when it does not';
SELECT pg_catalog.pg_extension_config_dump('cdp.tracking_plans', '');

-- Per workspace: the event naming convention (title_case: "Object Action"; snake_case) and what
-- happens to events no plan names (Unplanned-Event) and to names that break the convention.
CREATE TABLE cdp.tracking_settings (
    workspace_id integer PRIMARY KEY REFERENCES cdp.workspaces,
    naming text CHECK (naming IN ('title_case', 'snake_case')),
    unplanned text NOT NULL DEFAULT 'allow' CHECK (unplanned IN ('allow', 'flag', 'block'))
);
SELECT pg_catalog.pg_extension_config_dump('cdp.tracking_settings', '');

CREATE TABLE cdp.tracking_violations (
    workspace_id integer NOT NULL,
    event_id text NOT NULL,
    event text,
    received_at timestamptz NOT NULL,
    violations jsonb NOT NULL,            -- [{"type": "Required-Missing", "path": "$.properties.sku", "message": ...}]
    PRIMARY KEY (workspace_id, event_id)
);
COMMENT ON TABLE cdp.tracking_violations IS 'The violations of flagged events (which landed in cdp.events under the same event_id)';
SELECT pg_catalog.pg_extension_config_dump('cdp.tracking_violations', '');

CREATE FUNCTION cdp_internal.check_tracking_plan(event text, schema jsonb) RETURNS void
LANGUAGE C STRICT IMMUTABLE AS 'MODULE_PATHNAME', 'cdp_check_tracking_plan';
CREATE FUNCTION cdp_internal.tracking_plans_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM cdp_internal.check_tracking_plan(NEW.event, NEW.schema);
    RETURN NEW;
END;
$$;
CREATE TRIGGER tracking_plans_check BEFORE INSERT OR UPDATE ON cdp.tracking_plans
    FOR EACH ROW EXECUTE FUNCTION cdp_internal.tracking_plans_check();

-- What ingest does with an event whose own consent (context.consent.categoryPreferences) does
-- not grant a purpose: drop it (to cdp.rejected_events, reason no_consent, without its
-- payload), or strip it of everything that identifies a person (user and anonymous ids, traits,
-- context, IP) so it still counts in aggregates but joins no profile. An event that carries no
-- consent object grants nothing.
CREATE TABLE cdp.consent_policies (
    workspace_id integer NOT NULL REFERENCES cdp.workspaces,
    purpose text NOT NULL,
    at_ingest text NOT NULL CHECK (at_ingest IN ('drop', 'strip')),
    PRIMARY KEY (workspace_id, purpose)
);
COMMENT ON TABLE cdp.consent_policies IS 'Purposes an event must grant to be ingested as sent (else dropped or stripped)';
SELECT pg_catalog.pg_extension_config_dump('cdp.consent_policies', '');

-- from extension/55_segments.sql
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

-- from extension/58_access.sql
-- Roles and tenants. Three roles, made once per cluster (grant them to login roles):
--   cdp_admin    everything: definitions, erasure, raw data;
--   cdp_ingest   only cdp.ingest (which runs with the extension owner's rights), and only into
--                the workspaces granted to it;
--   cdp_analyst  the views of schema cdp_analyst: events, profiles and audiences of the
--                workspaces granted to it, identifiers pseudonymised, no secrets, no raw PII.
-- While cdp.workspace_grants is empty every workspace is open to every cdp role (one tenant);
-- from its first row on, a role reaches only the workspaces granted to it (or to a role it is a
-- member of), and cdp_admin all of them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdp_admin') THEN CREATE ROLE cdp_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdp_ingest') THEN CREATE ROLE cdp_ingest NOLOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdp_analyst') THEN CREATE ROLE cdp_analyst NOLOGIN; END IF;
END;
$$;

CREATE TABLE cdp.workspace_grants (
    role_name name NOT NULL,
    workspace_id integer NOT NULL REFERENCES cdp.workspaces ON DELETE CASCADE,
    PRIMARY KEY (role_name, workspace_id)
);
COMMENT ON TABLE cdp.workspace_grants IS 'Which roles (and their members) reach which workspaces; while it is empty, all are open';
SELECT pg_catalog.pg_extension_config_dump('cdp.workspace_grants', '');

-- Whether a role may reach a workspace.
CREATE FUNCTION cdp_internal.may_use_workspace(workspace integer, who oid) RETURNS boolean
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = who)
    OR pg_has_role(who, 'cdp_admin', 'MEMBER')
    OR NOT EXISTS (SELECT FROM cdp.workspace_grants)
    OR EXISTS (SELECT FROM cdp.workspace_grants g JOIN pg_roles r ON r.rolname = g.role_name
               WHERE g.workspace_id = workspace AND pg_has_role(who, r.oid, 'MEMBER'));

CREATE FUNCTION cdp_internal.workspaces_of(who oid) RETURNS integer[]
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(array_agg(w.workspace_id ORDER BY w.workspace_id), '{}') FROM cdp.workspaces w
        WHERE cdp_internal.may_use_workspace(w.workspace_id, who));

-- The workspaces the current role reaches (an invoker's function: current_user is the reader).
CREATE FUNCTION cdp_internal.visible_workspaces() RETURNS integer[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN cdp_internal.workspaces_of((SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user));

-- Pseudonymisation per identifier type or trait key: keep, hash (HMAC-SHA256 with the
-- workspace's secret, so equal values still match) or drop. Without a row: user_id,
-- anonymous_id, device_id, email and phone are hashed, and IPs dropped, in what analysts see.
CREATE TABLE cdp.pseudonymisation (
    workspace_id integer NOT NULL REFERENCES cdp.workspaces,
    field text NOT NULL,                  -- an identifier type, a trait key, or 'ip'
    action text NOT NULL CHECK (action IN ('keep', 'hash', 'drop')),
    PRIMARY KEY (workspace_id, field)
);
COMMENT ON TABLE cdp.pseudonymisation IS 'What analysts see of each identifier type and trait: keep, hash or drop';
SELECT pg_catalog.pg_extension_config_dump('cdp.pseudonymisation', '');

-- What an analyst sees of a value: itself, its keyed hash ("h:" + hex of HMAC-SHA256 with the
-- workspace's secret over "field:" + the value normalised as that identifier type), or nothing
-- (also when the workspace has no secret to hash with). In C: the analyst views call it for
-- every row, and it reads a workspace's policy and secret once per query.
CREATE FUNCTION cdp_internal.pseudonym(workspace integer, field text, value text) RETURNS text
LANGUAGE C STABLE STRICT SECURITY DEFINER PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_pseudonym';

-- A traits object as analysts see it: each string by pseudonym() (email and phone hashed by
-- default), other values only where the key's policy keeps them.
CREATE FUNCTION cdp_internal.pseudonymise_traits(workspace integer, traits jsonb) RETURNS jsonb
LANGUAGE C STABLE STRICT SECURITY DEFINER PARALLEL SAFE AS 'MODULE_PATHNAME', 'cdp_pseudonymise_traits';

CREATE SCHEMA cdp_analyst;
COMMENT ON SCHEMA cdp_analyst IS 'What the cdp_analyst role reads: its workspaces only, identifiers pseudonymised';

CREATE VIEW cdp_analyst.events AS
SELECT e.workspace_id, e.event_id, e.type, e.event, e.name,
       cdp_internal.pseudonym(e.workspace_id, 'anonymous_id', e.anonymous_id) AS anonymous_id,
       cdp_internal.pseudonym(e.workspace_id, 'user_id', e.user_id) AS user_id,
       e.profile_id, e."timestamp", e.received_at, e.session_id, e.page_path, e.page_title, e.referrer_host,
       e.referrer_medium, e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term, e.utm_content, e.device_type,
       e.os, e.os_version, e.browser, e.browser_version, cdp_internal.pseudonym(e.workspace_id, 'ip', host(e.ip)) AS ip,
       e.locale, e.properties, cdp_internal.pseudonymise_traits(e.workspace_id, e.traits) AS traits,
       (e.context - 'ip' - 'traits' - 'externalIds') #- '{device,id}' AS context
FROM cdp.events e
WHERE e.workspace_id = ANY ((SELECT cdp_internal.visible_workspaces())::integer[]);
COMMENT ON VIEW cdp_analyst.events IS 'Events of the workspaces the current role reaches, identifiers pseudonymised';

CREATE VIEW cdp_analyst.profiles AS
SELECT r.workspace_id, r.profile_id, cdp_internal.pseudonymise_traits(r.workspace_id, r.traits) AS traits, r.computed,
       r.first_seen, r.last_seen
FROM cdp.profile_records r
WHERE r.workspace_id = ANY ((SELECT cdp_internal.visible_workspaces())::integer[]);
COMMENT ON VIEW cdp_analyst.profiles IS 'Profiles of the workspaces the current role reaches, traits pseudonymised';

CREATE VIEW cdp_analyst.segment_members AS
SELECT m.workspace_id, s.name AS segment, m.profile_id, m.entered_at
FROM cdp.segment_members m JOIN cdp.segments s USING (segment_id)
WHERE m.workspace_id = ANY ((SELECT cdp_internal.visible_workspaces())::integer[]);
COMMENT ON VIEW cdp_analyst.segment_members IS 'Who is in each segment, in the workspaces the current role reaches';

-- Every identity edge (40_identity.sql: those held in identifiers' rows, and the others), of
-- the workspaces the reader reaches, as a row policy on a table would show them: a role granted
-- this view needs no grant on the tables under it.
CREATE VIEW cdp.identity_edges AS
SELECT workspace_id, a_type, a_value, b_type, b_value, source, event_id, first_seen, last_seen, merged, reason
FROM cdp_internal.identity_edges
WHERE workspace_id = ANY ((SELECT cdp_internal.visible_workspaces())::integer[])
UNION ALL
SELECT workspace_id, a_type, a_value, b_type, b_value, source, event_id, first_seen, last_seen, true, NULL::text
FROM cdp_internal.held_edges
WHERE workspace_id = ANY ((SELECT cdp_internal.visible_workspaces())::integer[]);
COMMENT ON VIEW cdp.identity_edges IS 'Pairs of identifiers seen together; merged or refused with a reason';

GRANT USAGE ON SCHEMA cdp_analyst TO cdp_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA cdp_analyst TO cdp_analyst;
GRANT USAGE ON SCHEMA cdp TO cdp_ingest, cdp_analyst, cdp_admin;
GRANT USAGE ON SCHEMA cdp_internal, cdp_audiences, cdp_analyst TO cdp_admin;
GRANT ALL ON ALL TABLES IN SCHEMA cdp, cdp_internal, cdp_analyst TO cdp_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA cdp, cdp_internal TO cdp_admin;
-- Only the owner computes keyed hashes of arbitrary values.
REVOKE EXECUTE ON FUNCTION cdp_internal.hmac_sha256(bytea, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION cdp_internal.keyed_hash(integer, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cdp_internal.keyed_hash(integer, text, text), cdp_internal.hmac_sha256(bytea, text) TO cdp_admin;

-- Row-level security on every workspace-keyed table of schema cdp: a role that is granted a
-- table directly (a tenant's own admin, a BI role) sees only its workspaces' rows, whatever
-- ids it guesses. The extension's owner (ingest, the owner-rights views above) is not bound.
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'cdp' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id' AND NOT a.attisdropped)
               AND c.relname NOT IN ('workspaces', 'workspace_grants')
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %s USING (workspace_id = ANY ((SELECT cdp_internal.visible_workspaces())::integer[]))', t);
    END LOOP;
END;
$$;

-- Write keys for the collector (cdp-collector): each names a source and a workspace. Only a
-- SHA-256 of the key is stored; the key itself is shown once, by cdp.create_write_key.
CREATE TABLE cdp.write_keys (
    key_hash bytea PRIMARY KEY,
    workspace_id integer NOT NULL REFERENCES cdp.workspaces,
    source_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
COMMENT ON TABLE cdp.write_keys IS 'The collector''s write keys (hashed), each for a source and a workspace';
SELECT pg_catalog.pg_extension_config_dump('cdp.write_keys', '');

CREATE FUNCTION cdp.create_write_key(source_name text, workspace_id integer DEFAULT 1) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text := 'wk_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
BEGIN
    INSERT INTO cdp.write_keys (key_hash, workspace_id, source_name)
    VALUES (sha256(convert_to(key, 'UTF8')), create_write_key.workspace_id, create_write_key.source_name);
    RETURN key;
END;
$$;
COMMENT ON FUNCTION cdp.create_write_key(text, integer) IS
    'Makes a write key for a source of a workspace and returns it; it is not stored, only its hash';

CREATE FUNCTION cdp.revoke_write_key(key text) RETURNS boolean
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE cdp.write_keys k SET revoked_at = now() WHERE k.key_hash = sha256(convert_to(revoke_write_key.key, 'UTF8'))
      AND k.revoked_at IS NULL RETURNING true;
END;

-- What the collector asks of a key it is given (no rows: unknown or revoked).
CREATE FUNCTION cdp_internal.write_key_lookup(key text, OUT workspace_id integer, OUT source_name text)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
SELECT k.workspace_id, k.source_name FROM cdp.write_keys k
WHERE k.key_hash = sha256(convert_to(key, 'UTF8')) AND k.revoked_at IS NULL;
$$;
REVOKE EXECUTE ON FUNCTION cdp_internal.write_key_lookup(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA cdp_internal TO cdp_ingest;
GRANT EXECUTE ON FUNCTION cdp_internal.write_key_lookup(text) TO cdp_ingest, cdp_admin;

-- from extension/90_maintenance.sql
-- Scheduled work, called by any scheduler (pg_cron where installed): never a hidden thread.

-- Forgets messageIds older than cdp.dedup_window, drops session states nobody can continue,
-- creates next month's events partition ahead of time, and moves windowed computed traits to
-- `at` (now, unless a replay or a test moves time explicitly).
CREATE FUNCTION cdp.tick(at timestamptz DEFAULT now(), OUT task text, OUT affected bigint)
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

    SELECT coalesce(sum(cdp_internal.move_computed_traits(w.workspace_id, tick.at)), 0) INTO n
    FROM (SELECT DISTINCT c.workspace_id FROM cdp.computed_traits c ORDER BY 1) w;
    task := 'move windowed computed traits'; affected := n; RETURN NEXT;

    SELECT coalesce(sum(cdp_internal.fire_due_triggers(w.workspace_id, tick.at)), 0) INTO n
    FROM (SELECT DISTINCT s.workspace_id FROM cdp.segments s WHERE s.mode = 'trigger' ORDER BY 1) w;
    task := 'fire due triggers'; affected := n; RETURN NEXT;
    -- Counted events too old to count again.
    DELETE FROM cdp_internal.trigger_state t USING cdp.segments s
    WHERE s.segment_id = t.segment_id AND t.deadline IS NULL AND t.event_at < tick.at - (s.trigger_rule ->> 'within')::interval;
END;
$$;
COMMENT ON FUNCTION cdp.tick(timestamptz) IS
    'Periodic maintenance: dedup window, idle sessions, partitions ahead of time, windowed computed traits and their segments, due triggers';

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

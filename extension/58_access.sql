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

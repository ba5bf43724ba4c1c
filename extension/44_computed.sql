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

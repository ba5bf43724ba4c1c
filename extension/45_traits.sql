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

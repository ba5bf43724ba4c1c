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

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

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

-- Internal statements are planned once per backend, and the tables they probe start empty.
-- A plan made while session_state was tiny scans it; as the table grows the plan is made again,
-- so ingest keeps probing the primary key instead of scanning the whole table per actor.
CREATE EXTENSION IF NOT EXISTS cdp;
ALTER TABLE cdp_internal.session_state SET (autovacuum_enabled = false);
SELECT accepted FROM cdp.ingest('{"type":"page","anonymousId":"grow-0","messageId":"grow-0"}');
ANALYZE cdp_internal.session_state;  -- the statistics of a tiny table
SELECT pg_stat_force_next_flush();
CREATE TEMP TABLE before AS
    SELECT seq_tup_read FROM pg_stat_all_tables WHERE relid = 'cdp_internal.session_state'::regclass;
-- 40 batches of 500 new visitors: 20,000 rows by the end.
SELECT sum(accepted) AS accepted FROM generate_series(1, 40) b, LATERAL cdp.ingest((
    SELECT json_agg(json_build_object('type', 'page', 'anonymousId', 'grow-' || b || '-' || i,
                                      'messageId', 'grow-' || b || '-' || i))::text
    FROM generate_series(1, 500) i));
SELECT pg_stat_force_next_flush();
-- Scanning per probe would read about 200 million rows; probing reads none.
SELECT s.seq_tup_read - b.seq_tup_read < 1000000 AS probes_not_scans
FROM pg_stat_all_tables s, before b WHERE s.relid = 'cdp_internal.session_state'::regclass;

-- Emptied (TRUNCATE) and grown again to the same size: PostgreSQL plans the statement again from
-- the statistics of the tiny table, and the growth is counted from there, so it probes again.
TRUNCATE cdp_internal.session_state;
SELECT accepted FROM cdp.ingest('{"type":"page","anonymousId":"regrow-0","messageId":"regrow-0"}');
ANALYZE cdp_internal.session_state;
SELECT pg_stat_force_next_flush();
UPDATE before SET seq_tup_read = (SELECT seq_tup_read FROM pg_stat_all_tables WHERE relid = 'cdp_internal.session_state'::regclass);
SELECT sum(accepted) AS accepted FROM generate_series(1, 40) b, LATERAL cdp.ingest((
    SELECT json_agg(json_build_object('type', 'page', 'anonymousId', 'regrow-' || b || '-' || i,
                                      'messageId', 'regrow-' || b || '-' || i))::text
    FROM generate_series(1, 500) i));
SELECT pg_stat_force_next_flush();
SELECT s.seq_tup_read - b.seq_tup_read < 1000000 AS probes_not_scans_after_truncate
FROM pg_stat_all_tables s, before b WHERE s.relid = 'cdp_internal.session_state'::regclass;
ALTER TABLE cdp_internal.session_state RESET (autovacuum_enabled);

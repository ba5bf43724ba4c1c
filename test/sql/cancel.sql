-- A cancel stops a long ingest cleanly and the session goes on.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET cdp.max_batch_bytes = '64MB';
CREATE TEMP TABLE big AS
SELECT '[' || string_agg(format('{"type":"track","event":"Bulk","anonymousId":"bulk-%s","messageId":"bulk-%s","properties":{"n":%s}}', i % 500, i, i), ',') || ']' AS payload
FROM generate_series(1, 200000) i;
SET statement_timeout = '50ms';
SELECT * FROM cdp.ingest((SELECT payload FROM big));
RESET statement_timeout;
SELECT count(*) AS bulk_rows FROM cdp.events WHERE event = 'Bulk';
SELECT * FROM cdp.ingest('{"type":"track","event":"After Cancel","userId":"c","messageId":"after-cancel"}');

-- A cancel in the middle of a long connected_components (100M edges streamed from a join, its
-- second thread busy with batches) stops it; the next call runs in full.
SET statement_timeout = '200ms';
SELECT count(*) FROM cdp.connected_components(
  'SELECT (a * 10000 + b)::text, (a * 10000 + b + 1)::text FROM generate_series(1, 10000) a, generate_series(1, 10000) b');
RESET statement_timeout;
SELECT count(*) AS nodes, count(DISTINCT component) AS components
FROM cdp.connected_components('SELECT g::text, (g % 1000)::text FROM generate_series(1, 20000) g');

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

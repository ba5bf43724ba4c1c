-- Events are partitioned by month of event time; partitions appear on demand, so an event in
-- a month nobody prepared is never an error.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

SELECT * FROM cdp.ingest('[
  {"type":"track","event":"Old Import","userId":"p1","messageId":"p-2019","timestamp":"2019-03-15T12:00:00Z"},
  {"type":"track","event":"Last Month","userId":"p1","messageId":"p-2026-10","timestamp":"2026-10-31T23:59:59.999Z"},
  {"type":"track","event":"This Month","userId":"p1","messageId":"p-2026-11","timestamp":"2026-11-01T00:00:00Z"}
]', received_at => '2026-11-23 00:00:00+00');

SELECT event, tableoid::regclass AS partition FROM cdp.events WHERE user_id = 'p1' ORDER BY "timestamp";

-- The partitions and their bounds.
SELECT c.oid::regclass AS partition, pg_get_expr(c.relpartbound, c.oid) AS bounds
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'cdp.events'::regclass AND c.relname IN ('events_2019_03', 'events_2026_10', 'events_2026_11')
ORDER BY c.relname;

-- Partitions carry the parent's index, and queries by time prune to the partitions they need.
SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'cdp.events_2019_03'::regclass;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cdp.events WHERE "timestamp" >= '2026-11-01' AND "timestamp" < '2026-12-01';

-- cdp.tick() creates next month's partition ahead of time (an earlier tick may have made it
-- already: start without it); calling it twice is harmless.
SELECT format('cdp.%I', 'events_' || to_char(now() AT TIME ZONE 'UTC' + interval '1 month', 'YYYY_MM')) AS next_month \gset
DROP TABLE IF EXISTS :next_month;
SELECT task, affected FROM cdp.tick() WHERE task LIKE 'create%';
SELECT task, affected FROM cdp.tick() WHERE task LIKE 'create%';
SELECT to_regclass(:'next_month') IS NOT NULL AS next_month_exists;

-- pg_dump keeps the customer data: the tables are registered as extension configuration.
SELECT unnest(extconfig)::regclass::text AS dumped FROM pg_extension WHERE extname = 'cdp' ORDER BY 1;

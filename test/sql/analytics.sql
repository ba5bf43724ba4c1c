-- Behavioural analytics: where people drop off in a funnel, who comes back, which sequences and
-- paths lead to an order. Every expected answer below was worked out by hand from the timelines.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET cdp.stitch_identities = off;

-- A workspace of its own, so that events of other tests do not count.
SELECT cdp.create_workspace('analytics-shop') AS ws \gset
-- Five shoppers on 20 November. Ann and Bob came from the spring campaign.
--   ann: Viewed 10:00, Added 10:05, Checkout 10:07, Completed 10:12    -> all 4 steps
--   bob: Viewed 10:00, Added 10:30, Checkout 11:30 (90 min after the view: outside 1 h)  -> 2
--   cat: Added 09:50 (before any view), Viewed 10:00, Added 10:01, Completed 10:02     -> 2
--   eve: Checkout 10:00 only                                             -> 0
--   fay: Viewed 10:00, Added 10:10, Viewed 10:20, Added 10:25, Checkout 11:15
--        (75 min after the first view, 55 after the second: the later start counts) -> 3
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","anonymousId":"f-ann","messageId":"fa1","timestamp":"2026-11-20T10:00:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Product Added","anonymousId":"f-ann","messageId":"fa2","timestamp":"2026-11-20T10:05:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Checkout Started","anonymousId":"f-ann","messageId":"fa3","timestamp":"2026-11-20T10:07:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Order Completed","anonymousId":"f-ann","messageId":"fa4","timestamp":"2026-11-20T10:12:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Product Viewed","anonymousId":"f-bob","messageId":"fb1","timestamp":"2026-11-20T10:00:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Product Added","anonymousId":"f-bob","messageId":"fb2","timestamp":"2026-11-20T10:30:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Checkout Started","anonymousId":"f-bob","messageId":"fb3","timestamp":"2026-11-20T11:30:00Z","context":{"campaign":{"name":"spring","source":"mail"}}},
  {"type":"track","event":"Product Added","anonymousId":"f-cat","messageId":"fc1","timestamp":"2026-11-20T09:50:00Z"},
  {"type":"track","event":"Product Viewed","anonymousId":"f-cat","messageId":"fc2","timestamp":"2026-11-20T10:00:00Z"},
  {"type":"track","event":"Product Added","anonymousId":"f-cat","messageId":"fc3","timestamp":"2026-11-20T10:01:00Z"},
  {"type":"track","event":"Order Completed","anonymousId":"f-cat","messageId":"fc4","timestamp":"2026-11-20T10:02:00Z"},
  {"type":"track","event":"Checkout Started","anonymousId":"f-eve","messageId":"fe1","timestamp":"2026-11-20T10:00:00Z"},
  {"type":"track","event":"Product Viewed","anonymousId":"f-fay","messageId":"ff1","timestamp":"2026-11-20T10:00:00Z"},
  {"type":"track","event":"Product Added","anonymousId":"f-fay","messageId":"ff2","timestamp":"2026-11-20T10:10:00Z"},
  {"type":"track","event":"Product Viewed","anonymousId":"f-fay","messageId":"ff3","timestamp":"2026-11-20T10:20:00Z"},
  {"type":"track","event":"Product Added","anonymousId":"f-fay","messageId":"ff4","timestamp":"2026-11-20T10:25:00Z"},
  {"type":"track","event":"Checkout Started","anonymousId":"f-fay","messageId":"ff5","timestamp":"2026-11-20T11:15:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-20 12:00:00+00');

-- The deepest step per person, and the time from the first step to each step reached.
SELECT anonymous_id,
       cdp.window_funnel('1 hour', "timestamp", event = 'Product Viewed', event = 'Product Added',
                         event = 'Checkout Started', event = 'Order Completed') AS steps,
       cdp.window_funnel_times('1 hour', '', "timestamp", event = 'Product Viewed', event = 'Product Added',
                               event = 'Checkout Started', event = 'Order Completed') AS times
FROM cdp.events WHERE workspace_id = :ws GROUP BY anonymous_id ORDER BY anonymous_id;

-- The same as a chart: people per step, conversion, median time from the first step.
SELECT * FROM cdp.funnel_report(ARRAY['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'],
                                '1 hour', since => '2026-11-20', until => '2026-11-21', workspace_id => :ws);
-- Broken down by campaign: each campaign's events make its own funnel.
SELECT * FROM cdp.funnel_report(ARRAY['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'],
                                '1 hour', since => '2026-11-20', until => '2026-11-21', breakdown => 'utm_campaign',
                                workspace_id => :ws);

-- Modes, on small timelines (minutes after 10:00; the last column breaks ties).
CREATE TEMP TABLE clicks (who text, minute int, step text, seq bigint);
INSERT INTO clicks VALUES
  ('order',   0, 'A', 1), ('order',   1, 'B', 2), ('order', 2, 'D', 3), ('order', 3, 'C', 4),   -- D intervenes
  ('dedup',   0, 'A', 1), ('dedup',   1, 'B', 2), ('dedup', 2, 'B', 3), ('dedup', 3, 'C', 4),   -- B repeats
  ('tie',     5, 'B', 1), ('tie',     5, 'A', 2),                                             -- B, then A, same minute
  ('same',    0, 'AB', 1), ('same',   9, 'C', 2),                                             -- one event is A and B
  ('reentry', 0, 'A', 1), ('reentry', 0, 'A', 2), ('reentry', 1, 'B', 3), ('reentry', 1, 'B', 4),
  ('nulls',   0, NULL, 1), ('nulls',  1, 'A', 2), ('nulls', 2, 'B', 3);
SELECT who,
       cdp.window_funnel('1 hour', ts, a, b, c) AS plain,
       cdp.window_funnel('1 hour', 'strict_order', ts, a, b, c) AS strict_order,
       cdp.window_funnel('1 hour', 'strict_deduplication', ts, a, b, c) AS strict_dedup,
       cdp.window_funnel('1 hour', 'strict_increase', ts, a, b, c) AS strict_increase,
       cdp.window_funnel('1 hour', 'strict_once', ts, a, b, c) AS strict_once,
       cdp.window_funnel('1 hour', '', ts, seq, a, b, c) AS by_seq
FROM (SELECT who, timestamptz '2026-11-20 10:00+00' + minute * interval '1 minute' AS ts, seq,
             strpos(step, 'A') > 0 AS a, strpos(step, 'B') > 0 AS b, strpos(step, 'C') > 0 AS c FROM clicks) t
GROUP BY who ORDER BY who;
-- order: D ends strict_order at 2; dedup: the second B ends strict_deduplication at 2;
-- tie: in the same minute A is taken before B (2) unless a tie-breaker says B came first (1), or
-- strict_increase wants B later than A (1); same: one event counts as A and B (3 with C) but as
-- only one of them under strict_once (1), and strict_increase wants B after A (1); nulls: a NULL
-- condition is false.
SELECT cdp.window_funnel('5 minutes', ts, true) AS one_step, cdp.window_funnel('5 minutes', ts, false) AS never
FROM (VALUES (now())) v(ts);
SELECT cdp.window_funnel('5 minutes', ts, true) AS no_rows FROM (SELECT now() AS ts WHERE false) v;
-- A NULL condition is false, wherever it stands among the others.
SELECT cdp.window_funnel('1 hour', now(), true, NULL::boolean, true) AS null_second_step,
       cdp.sequence_count('(?2)', now(), NULL::boolean, true, false) AS null_then_true,
       cdp.retention(true, NULL, true, false) AS kept;
-- Rows without a time are no events.
SELECT cdp.window_funnel('5 minutes', NULL::timestamptz, true) AS funnel_without_times,
       cdp.sequence_match('(?1)', NULL::timestamptz, true) AS match_without_times,
       cdp.sequence_count('(?1)', NULL::timestamptz, true) AS count_without_times;
SELECT cdp.sequence_match('(?1)', ts, true) AS match_no_rows, cdp.sequence_count('(?1)', ts, true) AS count_no_rows
FROM (SELECT now() AS ts WHERE false) v;

-- Retention: of the people active on day 0, who came back on day 1, and on day 7.
CREATE TEMP TABLE visits (who text, day date);
INSERT INTO visits VALUES ('r1', '2026-11-01'), ('r1', '2026-11-02'), ('r1', '2026-11-08'),
                          ('r2', '2026-11-01'), ('r2', '2026-11-08'),
                          ('r3', '2026-11-02'), ('r3', '2026-11-08'),
                          ('r4', '2026-11-01');
SELECT who, cdp.retention(day = '2026-11-01', day = '2026-11-02', day = '2026-11-08') AS kept
FROM visits GROUP BY who ORDER BY who;
SELECT sum(CASE WHEN r[1] THEN 1 ELSE 0 END) AS day0, sum(CASE WHEN r[2] THEN 1 ELSE 0 END) AS day1,
       sum(CASE WHEN r[3] THEN 1 ELSE 0 END) AS day7
FROM (SELECT cdp.retention(day = '2026-11-01', day = '2026-11-02', day = '2026-11-08') AS r
      FROM visits GROUP BY who) per_person;

-- Sequences: was a view followed at once by an add to cart; did an order follow a view within 15
-- minutes; how many view-then-add pairs?
SELECT anonymous_id,
       cdp.sequence_match('(?1)(?2)', "timestamp", event = 'Product Viewed', event = 'Product Added') AS view_then_add,
       cdp.sequence_match('(?1).*(?t<=900)(?2)', "timestamp", event = 'Product Viewed', event = 'Order Completed') AS ordered_soon,
       cdp.sequence_count('(?1)(?2)', "timestamp", event = 'Product Viewed', event = 'Product Added') AS view_add_pairs
FROM cdp.events WHERE workspace_id = :ws GROUP BY anonymous_id ORDER BY anonymous_id;
-- ann: viewed then added (1 pair), ordered 12 minutes after the view; bob: one pair, no order;
-- cat: the Added at 09:50 came first, then Viewed 10:00 and Added 10:01 (1 pair), ordered 2
-- minutes after; eve: nothing; fay: two pairs.

-- Paths: what people did next after viewing a product, within the session.
SELECT * FROM cdp.paths('Product Viewed', since => '2026-11-20', until => '2026-11-21', workspace_id => :ws);
SELECT * FROM cdp.paths('Product Viewed', depth => 2, since => '2026-11-20', until => '2026-11-21', workspace_id => :ws);
SELECT * FROM cdp.paths('Order Completed', direction => 'previous', depth => 2, since => '2026-11-20', until => '2026-11-21', workspace_id => :ws);

-- Across devices: Xena viewed a product on her phone before logging in anywhere, added it to the
-- cart logged in on her laptop, then logged in on the phone too (which merged the two profiles)
-- and ordered. The funnel counts one person who went all the way, not two half-way.
SET cdp.stitch_identities = on;
SELECT cdp.create_workspace('analytics-devices') AS devices \gset
SELECT * FROM cdp.ingest('{"type":"track","event":"Product Viewed","anonymousId":"x-phone","messageId":"x1","timestamp":"2026-11-20T10:00:00Z"}',
                         workspace_id => :devices, received_at => '2026-11-20 10:00:01+00');
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"xena","anonymousId":"x-laptop","messageId":"x2","timestamp":"2026-11-20T10:15:00Z"},
  {"type":"track","event":"Product Added","userId":"xena","anonymousId":"x-laptop","messageId":"x3","timestamp":"2026-11-20T10:20:00Z"}
]$$, workspace_id => :devices, received_at => '2026-11-20 10:20:01+00');
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"xena","anonymousId":"x-phone","messageId":"x4","timestamp":"2026-11-20T10:25:00Z"},
  {"type":"track","event":"Order Completed","userId":"xena","anonymousId":"x-laptop","messageId":"x5","timestamp":"2026-11-20T10:30:00Z"}
]$$, workspace_id => :devices, received_at => '2026-11-20 10:30:01+00');
SELECT count(DISTINCT profile_id) AS profiles_when_stored, count(DISTINCT current_profile_id) AS people_now
FROM cdp.events_by_profile WHERE workspace_id = :devices;
SELECT step, step_name, users, conversion_from_first
FROM cdp.funnel_report(ARRAY['Product Viewed', 'Product Added', 'Order Completed'], '1 hour', workspace_id => :devices);
SET cdp.stitch_identities = off;

-- Parallel plans: partial aggregates combine, and agree with a serial run.
CREATE TABLE analytics_rows AS
SELECT i % 53 AS who, timestamptz '2026-11-01' + (i * 7919 % 5000) * interval '1 minute' AS ts,
       i % 5 AS ev, i AS seq
FROM generate_series(1, 60000) i;
ANALYZE analytics_rows;
CREATE TEMP VIEW analytics_answers AS
SELECT who,
       cdp.window_funnel('2 hours', ts, ev = 1, ev = 2, ev = 3) AS plain,
       cdp.window_funnel('2 hours', 'strict_once,strict_order', ts, seq, ev = 1, ev = 2, ev = 3) AS strict,
       cdp.window_funnel_times('2 hours', '', ts, ev = 1, ev = 2) AS times,
       cdp.sequence_count('(?1)(?2)', ts, ev = 1, ev = 2) AS pairs,
       cdp.sequence_match('(?1).*(?t<600)(?2)', ts, ev = 1, ev = 3) AS quick,
       cdp.retention(ev = 0, ev = 4) AS kept
FROM analytics_rows GROUP BY who;
-- All answers in one line: a count of what is typical and a digest of everything.
CREATE TEMP VIEW analytics_digest AS
SELECT count(*) AS groups, count(*) FILTER (WHERE plain = 3) AS completed, sum(pairs) AS pairs,
       count(*) FILTER (WHERE quick) AS quick,
       md5(string_agg(concat_ws('|', who, plain, strict, times, pairs, quick, kept), ';' ORDER BY who)) AS digest
FROM analytics_answers;
SET max_parallel_workers_per_gather = 0;
SELECT * FROM analytics_digest \gset serial_
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT * FROM analytics_digest;
SELECT groups, completed, pairs, quick, digest = :'serial_digest' AS same_as_serial FROM analytics_digest;
-- One group over the whole table: the states of the workers are combined into one.
EXPLAIN (COSTS OFF) SELECT cdp.sequence_count('(?1)(?2)', ts, seq, ev = 1, ev = 2) FROM analytics_rows;
SELECT cdp.sequence_count('(?1)(?2)', ts, seq, ev = 1, ev = 2) AS parallel_pairs,
       cdp.window_funnel('10 minutes', 'strict_once', ts, seq, ev = 1, ev = 2, ev = 3, ev = 4) AS parallel_level
FROM analytics_rows;
SET max_parallel_workers_per_gather = 0;
SELECT cdp.sequence_count('(?1)(?2)', ts, seq, ev = 1, ev = 2) AS serial_pairs,
       cdp.window_funnel('10 minutes', 'strict_once', ts, seq, ev = 1, ev = 2, ev = 3, ev = 4) AS serial_level
FROM analytics_rows;
RESET ALL;
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
DROP TABLE analytics_rows CASCADE;

-- Bad input: clear errors, and the session stays usable.
SELECT cdp.window_funnel('1 month', now(), true);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.window_funnel('-1 hour', now(), true);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.window_funnel('1 hour', 'strict', now(), true);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.window_funnel('1 hour', now(), VARIADIC ARRAY[]::boolean[]);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.window_funnel(NULL, now(), true);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.window_funnel('1 hour', ts, VARIADIC c) FROM (VALUES (now(), ARRAY[true]), (now(), ARRAY[true, false])) v(ts, c);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.sequence_match('(?1)(?3)', now(), true, false);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.sequence_match('(?1)(?t>=ten)(?2)', now(), true, false);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.sequence_match('(?1)(?t>=10)', now(), true, false);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.funnel_report(ARRAY[]::text[], '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.funnel_report(ARRAY['Product Viewed'], '1 hour', breakdown => 'country');
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.paths('Product Viewed', direction => 'sideways');
\echo :LAST_ERROR_SQLSTATE
SET cdp.analytics_max_rows_per_group = 1000;
SELECT cdp.window_funnel('1 hour', now(), true) FROM generate_series(1, 1001);
\echo :LAST_ERROR_SQLSTATE
RESET cdp.analytics_max_rows_per_group;
SELECT cdp.window_funnel('1 hour', now(), true) AS still_usable FROM generate_series(1, 1001);

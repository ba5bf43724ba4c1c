-- The golden record: what we know of Sarah, from the website's identify calls and from the CRM,
-- folded by cdp.merge_traits under per-trait survivorship rules.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET cdp.stitch_identities = off;
SELECT cdp.create_workspace('traits-shop') AS ws \gset

-- The website: three identify calls; the one from 1 November arrives last (a phone that was
-- offline) and must not overwrite what 20 November said.
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"sarah","messageId":"t1","timestamp":"2026-11-10T09:00:00Z",
   "traits":{"email":"sarah@example.com","plan":"free","city":"Haifa","tags":["newsletter"],"favourite":"headphones","visits":3}},
  {"type":"identify","userId":"sarah","messageId":"t2","timestamp":"2026-11-20T09:00:00Z",
   "traits":{"email":"sarah.k@example.com","plan":"plus","favourite":"headphones","visits":7,"phone":null}},
  {"type":"identify","userId":"sarah","messageId":"t3","timestamp":"2026-11-01T09:00:00Z",
   "traits":{"email":"old@example.com","plan":"trial","city":"Jerusalem","tags":["beta","newsletter"],"favourite":"laptops","visits":1}}
]$$, workspace_id => :ws, received_at => '2026-11-21 12:00:00+00');

-- With no rules every trait is the latest by event time: t2's values, then t1's for what t2 did
-- not send (city, tags), and phone is null because t2 cleared it.
SELECT jsonb_pretty(cdp.merge_traits(traits, "timestamp")) AS latest_everything
FROM cdp.events WHERE workspace_id = :ws AND user_id = 'sarah';

-- The CRM knows her name and city (it sold her a laptop last year) and is the better source for
-- them: priority 1 against the website's 2.
CREATE TEMP TABLE crm_customers (customer_email text, traits jsonb, updated_at timestamptz);
INSERT INTO crm_customers VALUES
  ('sarah.k@example.com', '{"name":"Sarah Katz","city":"Tel Aviv","plan":"plus","last_purchase":"laptop","lifetime_value":1499.9}', '2025-12-03 10:00+00');
INSERT INTO cdp.trait_rules (workspace_id, trait, rule) VALUES
  (:ws, 'city', 'source_priority'), (:ws, 'name', 'source_priority'), (:ws, 'email', 'latest'),
  (:ws, 'tags', 'union'), (:ws, 'favourite', 'most_frequent'), (:ws, 'visits', 'max'),
  (:ws, 'first_plan', 'earliest');
CREATE TEMP VIEW sarah_sources AS
  SELECT traits || jsonb_build_object('first_plan', traits->'plan') AS traits, "timestamp" AS ts, 2 AS priority
  FROM cdp.events WHERE workspace_id = :ws AND user_id = 'sarah'
  UNION ALL
  SELECT traits, updated_at, 1 FROM crm_customers;
SELECT jsonb_pretty(cdp.merge_traits(traits, ts, priority, :ws)) AS golden_record FROM sarah_sources;
-- city: the CRM's Tel Aviv (priority 1) although the website said Haifa later; email: the latest;
-- tags: every tag once; favourite: headphones, seen twice; visits: the largest; first_plan: the
-- plan of the earliest identify (1 November: trial, though it arrived last); plan: the latest
-- (the website's plus, 20 November, over the CRM's of December 2025).

-- Two profiles found to be one person: their records combine by the same rules, whichever way
-- round (what a merge of profiles does, and what parallel workers do).
CREATE TEMP TABLE second_device (traits jsonb, ts timestamptz, priority int);
INSERT INTO second_device VALUES
  ('{"tags":["app-user"],"favourite":"laptops","visits":12,"city":"Eilat"}', '2026-11-25 08:00+00', 2),
  ('{"favourite":"laptops"}', '2026-11-26 08:00+00', 2);
SELECT cdp.merge_traits(traits, ts, priority, :ws) = (
         SELECT cdp.merge_traits(traits, ts, priority, :ws)
         FROM (SELECT * FROM second_device UNION ALL SELECT * FROM sarah_sources) s) AS same_both_ways,
       cdp.merge_traits(traits, ts, priority, :ws) -> 'favourite' AS favourite,
       cdp.merge_traits(traits, ts, priority, :ws) -> 'tags' AS tags
FROM (SELECT * FROM sarah_sources UNION ALL SELECT * FROM second_device) s;
-- favourite: laptops, now seen three times to headphones' two; tags gain app-user.

-- Records can be kept as states and combined later (how stored profiles merge): the state of
-- each side, merged, stands for the same record as all the rows at once.
SELECT cdp_internal.traits_of(cdp_internal.merge_traits_state(traits, ts, priority, :ws, NULL, NULL))
         = cdp.merge_traits(traits, ts, priority, :ws) AS state_stands_for_the_record
FROM sarah_sources;
SELECT cdp_internal.traits_of(cdp_internal.merge_trait_states(
         (SELECT cdp_internal.merge_traits_state(traits, ts, priority, :ws, NULL, NULL) FROM second_device),
         (SELECT cdp_internal.merge_traits_state(traits, ts, priority, :ws, NULL, NULL) FROM sarah_sources)))
       = (SELECT cdp.merge_traits(traits, ts, priority, :ws)
          FROM (SELECT * FROM sarah_sources UNION ALL SELECT * FROM second_device) s) AS merged_states_agree;
-- Bytes cut short (format 2, one trait, then nothing), and bytes of another format.
SELECT cdp_internal.traits_of('\x0201'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT cdp_internal.traits_of('\x0102'::bytea);

-- Parallel plans combine partial records and agree with a serial run (few, large groups: where
-- splitting the work pays, and the planner does it).
CREATE TABLE trait_rows AS
SELECT i % 4 AS profile,
       jsonb_build_object('plan', (ARRAY['free', 'plus', 'pro'])[1 + i % 3], 'visits', i % 13,
                          'tags', jsonb_build_array('t' || i % 5), 'favourite', 'c' || (i * 7) % 4,
                          'city', 'city' || i % 11) AS traits,
       timestamptz '2026-01-01' + (i * 7919 % 10007) * interval '1 minute' AS ts, 1 + i % 3 AS priority
FROM generate_series(1, 30000) i;
ANALYZE trait_rows;
CREATE TEMP VIEW trait_digest AS
SELECT count(*) AS profiles, md5(string_agg(r::text, ';' ORDER BY profile)) AS digest
FROM (SELECT profile, cdp.merge_traits(traits, ts, priority, :ws) AS r FROM trait_rows GROUP BY profile) g;
SET max_parallel_workers_per_gather = 0;
SELECT * FROM trait_digest \gset serial_
-- Settings under which the planner splits even a small aggregate across workers.
\set parallel_plans 'SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET parallel_leader_participation = off;'
:parallel_plans
EXPLAIN (COSTS OFF) SELECT * FROM trait_digest;
SELECT profiles, digest = :'serial_digest' AS same_as_serial FROM trait_digest;
RESET ALL;
SET timezone = 'UTC';
DROP TABLE trait_rows CASCADE;

-- A record is written value by value: every kind of value comes out as it went in (escaped
-- and non-ASCII strings, numbers keeping their scale, nested arrays and objects, null, booleans).
SELECT r = t AS same, r
FROM (SELECT t, cdp.merge_traits(t, now()) AS r
      FROM (VALUES ('{"quote": "say \"hi\"", "tab": "a\tb", "slash": "c:\\d", "name": "Zoë 東京",
                      "price": 1.50, "big": 12345678901234567890, "neg": -0.0001, "none": null,
                      "yes": true, "no": false, "tags": ["a", {"b": [1, 2.0]}], "address": {"city": "Tel Aviv"}}'::jsonb)) v(t) GROUP BY t) x;
-- An object of 40 traits: past 32 entries jsonb stores offsets, not lengths, for some of them.
SELECT cdp.merge_traits(t, now()) = t AS forty_traits_as_they_went_in
FROM (SELECT jsonb_object_agg('trait' || i, CASE i % 3 WHEN 0 THEN to_jsonb(i * 1.5) WHEN 1 THEN to_jsonb(repeat('v', i))
                                                    ELSE jsonb_build_array(i, 'x') END) AS t
      FROM generate_series(1, 40) i) s GROUP BY t;

-- Numbers are read from jsonb and written back without numeric_out and numeric_in when they
-- have at most 32 digits either side of the point, through them otherwise. 20,000 numbers of
-- every size (up to 50 digits) and scale (up to 39), negative and positive, and zeros with
-- scales: each one's state holds its text as numeric_out writes it, then its value as a double
-- (as float8 reads it, in the machine's byte order); each record's number has the same text and
-- the same stored form (numeric_send) as the number that went in; max and min (by value) pick
-- what SQL's max and min pick.
CREATE TEMP TABLE numbers AS
  SELECT i, CASE WHEN i % 997 = 0 THEN round(0::numeric, i % 7)
                 ELSE round(hashint8(i)::numeric * power(10::numeric, i % 50 - 30), i % 40) END AS x
  FROM generate_series(1, 20000) i;
SELECT count(*) AS numbers,
       count(*) FILTER (WHERE position(decode(lpad(to_hex(length(x::text)), 2, '0'), 'hex') || convert_to(x::text, 'UTF8')
                                       || (SELECT string_agg(substring(float8send(x::float8) FROM 9 - k FOR 1), ''::bytea ORDER BY k)
                                           FROM generate_series(1, 8) k) IN state) > 0) AS state_holds_text_and_double,
       count(*) FILTER (WHERE r ->> 'n' = x::text) AS same_text,
       count(*) FILTER (WHERE numeric_send((r -> 'n')::numeric) = numeric_send(x)) AS same_stored_form,
       count(*) FILTER (WHERE length(ltrim(split_part(x::text, '.', 1), '-')) > 32
                           OR length(split_part(x::text, '.', 2)) > 32) AS past_32_digits
FROM (SELECT i, x, cdp.merge_traits(jsonb_build_object('n', x), now()) AS r,
             cdp_internal.merge_traits_state(jsonb_build_object('n', x), now(), NULL, 1, NULL, NULL) AS state
      FROM numbers GROUP BY i, x) s;
INSERT INTO cdp.trait_rules (workspace_id, trait, rule) VALUES (77, 'high', 'max'), (77, 'low', 'min');
SELECT r -> 'high' = to_jsonb(max(x)) AS max_agrees, r -> 'low' = to_jsonb(min(x)) AS min_agrees
FROM (SELECT cdp.merge_traits(jsonb_build_object('high', x, 'low', x), now(), NULL, 77) AS r FROM numbers) s, numbers
GROUP BY r;
DELETE FROM cdp.trait_rules WHERE workspace_id = 77;
DROP TABLE numbers;

-- Without a trait kept by most_frequent or union, cdp.merge_traits folds rows into a lighter
-- state (the values' jsonb bytes, no JSON text); cdp_internal.merge_traits_state (which keeps
-- provenance) always uses the full one. Both pick the same survivors: 3,000 groups of rows with
-- traits under latest, earliest, source priority, max and min, values of every kind (strings
-- apart only by an escape or by a prefix, numbers equal as doubles but not as text, nulls,
-- booleans, arrays, objects; values short enough to keep in the state's entry and longer ones),
-- keys left out at random, and times and priorities that tie.
INSERT INTO cdp.trait_rules (workspace_id, trait, rule) VALUES
  (78, 'a', 'earliest'), (78, 'b', 'source_priority'), (78, 'c', 'max'), (78, 'd', 'min'), (78, 'a_long_trait_name', 'max'),
  (79, 'a', 'earliest'), (79, 'b', 'union'), (79, 'c', 'max'), (79, 'd', 'most_frequent');
CREATE TABLE lean_rows AS
SELECT i % 3000 AS g, i % 4 AS few, i,
       (SELECT jsonb_object_agg(k, (ARRAY['"ab"', '"ab!"', '"a\"b"', '"a\\b"', '"ab\n"', '""', '"Zoë"', '1', '1.0', '1.50',
                                          '-3.5', '100000000000000000001', '100000000000000000002', 'null', 'true',
                                          'false', '[1, 2]', '[1]', '{"x": 1}', '{"x": "y"}',
                                          '"a string longer than thirty-two bytes, kept apart"',
                                          '{"nested": ["an object longer than thirty-two bytes", 1.5]}']::jsonb[])
                                   [1 + (hashint4(i * 31 + ord::int) & 2147483647) % 22])
        FROM unnest(ARRAY['a', 'b', 'c', 'd', 'f', 'g', 'a_long_trait_name']) WITH ORDINALITY u(k, ord)
        WHERE (hashint4(i * 17 + ord::int) & 3) <> 0) AS t,
       timestamptz '2026-01-01' + ((hashint4(i * 7) & 2147483647) % 4) * interval '1 hour' AS ts,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + (hashint4(i * 11) & 2147483647) % 3 END AS p
FROM generate_series(1, 30000) i;
ANALYZE lean_rows;
SELECT count(*) AS groups, count(*) FILTER (WHERE lean::text = full_state::text) AS same_records,
       count(*) FILTER (WHERE lean::text LIKE '%a_long_trait_name%') AS with_the_long_key
FROM (SELECT g, cdp.merge_traits(t, ts, p, 78) AS lean,
             cdp_internal.traits_of(cdp_internal.merge_traits_state(t, ts, p, 78, NULL, NULL)) AS full_state
      FROM lean_rows GROUP BY g) s;
-- Max and min pass over nulls: a trait seen only as null under them is not in the record (one
-- under latest keeps its null).
SELECT cdp.merge_traits(t, now(), NULL, 78) AS only_nulls
FROM (VALUES ('{"c": null, "d": null, "f": null}'::jsonb), ('{"c": null}'::jsonb)) v(t);
-- Groups whose last two rows come under rules that tally (workspace 79: union, most_frequent)
-- move to the full state on the way: the same records as the full state all along.
SELECT count(*) AS groups, count(*) FILTER (WHERE switched::text = full_state::text) AS same_records
FROM (SELECT g, cdp.merge_traits(t, ts, p, CASE WHEN i > 24000 THEN 79 ELSE 78 END ORDER BY i) AS switched,
             cdp_internal.traits_of(cdp_internal.merge_traits_state(t, ts, p, CASE WHEN i > 24000 THEN 79 ELSE 78 END,
                                                                    NULL, NULL ORDER BY i)) AS full_state
      FROM lean_rows WHERE g < 100 GROUP BY g) s;
-- Lighter states cross from parallel workers (serialised as full ones) and agree with a serial run.
CREATE TEMP VIEW lean_digest AS
SELECT count(*) AS groups, md5(string_agg(r::text, ';' ORDER BY few)) AS digest
FROM (SELECT few, cdp.merge_traits(t, ts, p, 78) AS r FROM lean_rows GROUP BY few) s;
SELECT * FROM lean_digest \gset serial_
:parallel_plans
EXPLAIN (COSTS OFF) SELECT * FROM lean_digest;
SELECT groups, digest = :'serial_digest' AS same_as_serial FROM lean_digest;
RESET ALL;
SET timezone = 'UTC';
DELETE FROM cdp.trait_rules WHERE workspace_id IN (78, 79);
DROP TABLE lean_rows CASCADE;

-- Bad input: clear errors, the session stays usable.
SELECT cdp.merge_traits('["not", "an", "object"]'::jsonb, now());
\echo :LAST_ERROR_SQLSTATE
INSERT INTO cdp.trait_rules (workspace_id, trait, rule) VALUES (1, 'plan', 'newest');
\echo :LAST_ERROR_SQLSTATE
SELECT cdp.merge_traits(t, now()) AS still_usable FROM (VALUES ('{"a":1}'::jsonb), (NULL)) v(t);

-- Sarah's whole profile: what the CRM knows (she bought a laptop last year, lives in Tel Aviv)
-- joined with what she does on the site (three headphone models viewed, a cart she did not buy,
-- a help-centre search), with computed traits that move as time passes and cdp.tick() runs.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT cdp.create_workspace('sarah-360') AS ws \gset

-- Computed traits, defined before any event (so every value below comes from ingest).
SELECT cdp.define_computed_trait('headphones_viewed_24h', '{"function": "distinct_count", "event": "Product Viewed",
  "property": "properties.sku", "where": {"properties.category": "Headphones"}, "window": "24 hours"}', :ws);
SELECT cdp.define_computed_trait('carts_7d', '{"function": "count", "event": "Product Added", "window": "7 days"}', :ws);
SELECT cdp.define_computed_trait('orders_30d', '{"function": "count", "event": "Order Completed", "window": "30 days"}', :ws);
SELECT cdp.define_computed_trait('lifetime_revenue', '{"function": "sum", "event": "Order Completed",
  "property": "properties.total"}', :ws);
SELECT cdp.define_computed_trait('last_product_viewed', '{"function": "last", "event": "Product Viewed",
  "property": "properties.name"}', :ws);
SELECT cdp.define_computed_trait('favourite_category', '{"function": "most_frequent", "event": "Product Viewed",
  "property": "properties.category"}', :ws);
SELECT cdp.define_computed_trait('priciest_view', '{"function": "max", "event": "Product Viewed",
  "property": "properties.price", "where": {"properties.price": {">=": 100}}}', :ws);
SELECT name, definition ->> 'function' AS function, definition ->> 'window' AS window
FROM cdp.computed_traits WHERE workspace_id = :ws ORDER BY name;

-- Definitions that cannot work are refused with what is wrong and how to write it.
\set VERBOSITY default
SELECT cdp.define_computed_trait('avg_price', '{"function": "avg", "property": "properties.price"}', :ws);
SELECT cdp.define_computed_trait('revenue', '{"function": "sum", "event": "Order Completed"}', :ws);
SELECT cdp.define_computed_trait('revenue', '{"function": "sum", "property": "price"}', :ws);
SELECT cdp.define_computed_trait('views', '{"function": "count", "window": "a fortnight"}', :ws);
SELECT cdp.define_computed_trait('Views', '{"function": "count"}', :ws);
INSERT INTO cdp.computed_traits (workspace_id, name, definition) VALUES (:ws, 'views', '{"function": "count", "colour": "red"}');
SELECT count(*) AS definitions_after_errors FROM cdp.computed_traits WHERE workspace_id = :ws;

-- The CRM's customers table, registered as a source with priority 1: its city beats what the
-- site's forms say (city's rule is source_priority), but it is never copied.
CREATE TABLE crm_customers (customer_id text, email text, city text, last_purchase text, updated_at timestamptz);
INSERT INTO crm_customers VALUES
  ('C-1001', 'Sarah.Katz@Example.com', 'Tel Aviv', 'Laptop Pro 14', '2025-11-02 09:00+00'),
  ('C-1002', 'dan@example.com', 'Haifa', NULL, '2025-12-01 09:00+00'),
  (NULL, NULL, 'Nowhere', NULL, '2025-12-02 09:00+00');
INSERT INTO cdp.trait_rules (workspace_id, trait, rule) VALUES (:ws, 'city', 'source_priority');
SELECT cdp.add_source('crm', 'crm_customers', '{"user_id": "customer_id", "email": "email"}',
                      '{"city": "city", "last_purchase": "last_purchase"}', 'updated_at', 1, :ws);
SELECT * FROM cdp.sync_source('crm', :ws);
-- Three rows read; the one with no identifier could join nobody, so it is kept as rejected.
SELECT reason, detail, raw::jsonb -> 'traits' AS traits FROM cdp.rejected_events WHERE workspace_id = :ws;
-- A second sync reads nothing new.
SELECT rows_read FROM cdp.sync_source('crm', :ws);

-- On her phone, not logged in: three headphone models, one of them twice, a cart, a
-- help-centre search. The app's form says she lives in Jaffa.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","anonymousId":"phone-1","messageId":"s1","timestamp":"2026-11-20T18:00:00Z",
   "properties":{"sku":"WH-1000","name":"Sony WH-1000XM5","category":"Headphones","price":349}},
  {"type":"track","event":"Product Viewed","anonymousId":"phone-1","messageId":"s2","timestamp":"2026-11-20T18:05:00Z",
   "properties":{"sku":"QC-45","name":"Bose QC45","category":"Headphones","price":279}},
  {"type":"track","event":"Product Viewed","anonymousId":"phone-1","messageId":"s3","timestamp":"2026-11-20T18:10:00Z",
   "properties":{"sku":"WH-1000","name":"Sony WH-1000XM5","category":"Headphones","price":349}},
  {"type":"track","event":"Product Viewed","anonymousId":"phone-1","messageId":"s4","timestamp":"2026-11-20T18:20:00Z",
   "properties":{"sku":"AP-MAX","name":"AirPods Max","category":"Headphones","price":549},
   "context":{"traits":{"city":"Jaffa"}}},
  {"type":"track","event":"Product Viewed","anonymousId":"phone-1","messageId":"s5","timestamp":"2026-11-20T18:25:00Z",
   "properties":{"sku":"CASE-1","name":"Headphone case","category":"Accessories","price":29}},
  {"type":"track","event":"Product Added","anonymousId":"phone-1","messageId":"s6","timestamp":"2026-11-20T18:30:00Z",
   "properties":{"sku":"AP-MAX","price":549}},
  {"type":"track","event":"Help Center Searched","anonymousId":"phone-1","messageId":"s7","timestamp":"2026-11-20T18:40:00Z",
   "properties":{"query":"noise cancelling on flights"}}
]$$, workspace_id => :ws, received_at => '2026-11-20 18:45:00+00');
-- Two profiles so far: the CRM's Sarah, and the phone's anonymous visitor with its counts.
SELECT cdp.profile('anonymous_id', 'phone-1', :ws, at => '2026-11-20 19:00+00') -> 'computed' AS phone_computed;

-- She logs in on the phone: the two profiles merge, the CRM's (the older) survives, and the
-- records combine: traits by their rules, computed traits as if counted on one profile.
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"C-1001","anonymousId":"phone-1","messageId":"s8","timestamp":"2026-11-20T18:50:00Z",
   "traits":{"plan":"plus","email":"sarah.katz@example.com"}}
]$$, workspace_id => :ws, received_at => '2026-11-20 18:50:01+00');
-- An older identify arrives late: it does not overwrite the plan of the 20th.
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"C-1001","messageId":"s9","timestamp":"2026-11-01T08:00:00Z","traits":{"plan":"free"}}
]$$, workspace_id => :ws, received_at => '2026-11-20 18:55:00+00');

-- The 360 view a support agent opens, by any of her identifiers.
SELECT jsonb_pretty(cdp.profile('email', ' SARAH.KATZ@example.com', :ws, at => '2026-11-20 19:00+00')
                    - 'last_events' - 'profile_id' - 'merged_from');
SELECT coalesce(e ->> 'event', e ->> 'type') AS event, e ->> 'timestamp' AS at
FROM jsonb_array_elements(cdp.profile('user_id', 'C-1001', :ws, at => '2026-11-20 19:00+00', last_events => 3) -> 'last_events') e;
SELECT jsonb_array_length(cdp.profile('user_id', 'C-1001', :ws) -> 'merged_from') AS profiles_merged_in;
SELECT cdp.profile('email', 'nobody@example.com');

-- Time passes. Nothing has left a window on the 21st at 18:00, so a tick changes nothing.
SELECT affected AS profiles_changed FROM cdp.tick('2026-11-21 18:00+00') WHERE task = 'move windowed computed traits';
-- By the 21st at 19:00 every view of the 20th is more than a day old: the tick compacts
-- Sarah's state, the 24-hour count drops to 0; the cart (7 days) still counts.
SELECT affected AS profiles_changed FROM cdp.tick('2026-11-21 19:00+00') WHERE task = 'move windowed computed traits';
SELECT cdp.profile('user_id', 'C-1001', :ws, at => '2026-11-21 19:00+00') -> 'computed' AS computed_next_day;
SELECT computed_expires_at FROM cdp_internal.profile_state
WHERE workspace_id = :ws AND profile_id = cdp.resolve('user_id', 'C-1001', :ws);
-- A week later the cart is gone too, and nothing is left to expire.
SELECT affected AS profiles_changed FROM cdp.tick('2026-11-28 19:00+00') WHERE task = 'move windowed computed traits';
SELECT cdp.profile('user_id', 'C-1001', :ws, at => '2026-11-28 19:00+00') -> 'computed' ->> 'carts_7d' AS carts_7d,
       computed_expires_at
FROM cdp_internal.profile_state WHERE workspace_id = :ws AND profile_id = cdp.resolve('user_id', 'C-1001', :ws);

-- A trait defined after the events counts them at once (a lifetime one: the backfill's window
-- is read at the current time).
SELECT cdp.define_computed_trait('help_searches', '{"function": "count", "event": "Help Center Searched"}', :ws)
       AS profiles_backfilled;
SELECT cdp.profile('user_id', 'C-1001', :ws) -> 'computed' -> 'help_searches' AS help_searches;
-- Redefined, it counts by the new definition; dropped, it is gone from every profile.
SELECT cdp.define_computed_trait('help_searches', '{"function": "count", "event": ["Help Center Searched", "Product Viewed"]}', :ws)
       AS profiles_backfilled;
SELECT cdp.profile('user_id', 'C-1001', :ws) -> 'computed' -> 'help_searches' AS help_searches_and_views;
SELECT cdp.drop_computed_trait('help_searches', :ws);
SELECT cdp.profile('user_id', 'C-1001', :ws) -> 'computed' ? 'help_searches' AS still_there;

-- The CRM row changes: the next sync reads just that row. A rebuild from scratch gives the same
-- record as the one kept incrementally (the source's rows are read again).
UPDATE crm_customers SET city = 'Ramat Gan', updated_at = '2026-11-22 10:00+00' WHERE customer_id = 'C-1001';
SELECT rows_read, rows_linked FROM cdp.sync_source('crm', :ws);
SELECT traits FROM cdp.profile_records WHERE workspace_id = :ws AND profile_id = cdp.resolve('user_id', 'C-1001', :ws) \gset kept_
SELECT cdp.rebuild_profile_records(:ws) AS profiles_rebuilt;
SELECT traits = :'kept_traits'::jsonb AS rebuilt_equals_kept, traits ->> 'city' AS city
FROM cdp.profile_records WHERE workspace_id = :ws AND profile_id = cdp.resolve('user_id', 'C-1001', :ws);

-- Registering a source checks what it names.
SELECT cdp.add_source('crm2', 'crm_customers', '{"user_id": "id"}', workspace_id => :ws);
SELECT cdp.add_source('crm2', 'crm_customers', '{"user_id": "customer_id"}', timestamp_column => 'city', workspace_id => :ws);
SELECT cdp.add_source('Bad Name', 'crm_customers', '{"user_id": "customer_id"}', workspace_id => :ws);
SELECT cdp.add_source('crm2', 'crm_customers', '{}', workspace_id => :ws);
SELECT * FROM cdp.sync_source('nope');
DROP TABLE crm_customers;

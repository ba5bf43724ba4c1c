-- Audiences kept current by ingest: the mission's stories as realtime segments and triggers,
-- the feed a consumer reads with a cursor, and batch segments refreshed on demand.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT cdp.create_workspace('segments-shop') AS ws \gset
-- Who a profile is, by its user id (profile ids depend on what ran before).
CREATE FUNCTION ids_of(profile bigint) RETURNS text LANGUAGE sql STABLE
RETURN (SELECT string_agg(id_value, ',' ORDER BY id_value) FROM cdp.identifiers
        WHERE profile_id = profile AND id_type IN ('user_id', 'anonymous_id'));
CREATE FUNCTION who(profile bigint) RETURNS text LANGUAGE sql STABLE
RETURN coalesce(ids_of(profile),
                (SELECT 'merged into ' || ids_of(merged_into) FROM cdp.profiles WHERE profile_id = profile));
CREATE VIEW feed AS
SELECT change_id, segment, who(profile_id) AS who, change, at, cause FROM cdp.segment_changes;

-- What the stories need to know about a person, kept by ingest.
SELECT cdp.define_computed_trait('eco_views_24h', '{"function": "count", "event": "Product Viewed",
  "where": {"properties.category": "Sustainable Fashion"}, "window": "24 hours"}', :ws);
SELECT cdp.define_computed_trait('orders_24h', '{"function": "count", "event": "Order Completed", "window": "24 hours"}', :ws);
SELECT cdp.define_computed_trait('orders', '{"function": "count", "event": "Order Completed"}', :ws);
SELECT cdp.define_computed_trait('support_visits_7d', '{"function": "count", "type": "page",
  "where": {"properties.path": "/support/wh-1000"}, "window": "7 days"}', :ws);
SELECT cdp.define_computed_trait('top_level', '{"function": "max", "event": "Level Completed", "property": "properties.level"}', :ws);
SELECT cdp.define_computed_trait('device', '{"function": "last", "property": "context.device.type"}', :ws);
SELECT cdp.define_computed_trait('region', '{"function": "last", "property": "context.location.region"}', :ws);

SELECT cdp.create_segment('eco_browsers', 'computed.eco_views_24h >= 3 AND computed.orders_24h = 0',
                          workspace_id => :ws) AS members;
SELECT cdp.create_segment('support_seekers', 'computed.support_visits_7d >= 2', workspace_id => :ws) AS members;
SELECT cdp.create_segment('asia_mobile_level_10', $$computed.device = 'mobile' AND computed.region = 'Asia'
  AND computed.top_level >= 10 AND computed.orders = 0$$, workspace_id => :ws) AS members;
SELECT cdp.create_trigger('abandoned_cart', 'Product Added', 'Order Completed', '1 hour', workspace_id => :ws);
SELECT cdp.create_trigger('error_storm', 'Error Shown', within => '10 minutes', times => 3, workspace_id => :ws);
SELECT name, mode, definition FROM cdp.segments WHERE workspace_id = :ws ORDER BY segment_id;

-- Story 1: Maya views three sustainable-fashion products in an evening and buys nothing; Noa
-- views three too, but orders. Maya enters the segment in the batch that makes her qualify.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","userId":"maya","messageId":"m1","timestamp":"2026-11-20T19:00:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Product Viewed","userId":"maya","messageId":"m2","timestamp":"2026-11-20T19:05:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Product Viewed","userId":"noa","messageId":"n1","timestamp":"2026-11-20T19:00:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Product Viewed","userId":"noa","messageId":"n2","timestamp":"2026-11-20T19:01:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Product Viewed","userId":"noa","messageId":"n3","timestamp":"2026-11-20T19:02:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Order Completed","userId":"noa","messageId":"n4","timestamp":"2026-11-20T19:10:00Z","properties":{"total":120}}
]$$, workspace_id => :ws, received_at => '2026-11-20 19:10:00+00');
SELECT segment, who, change, at, cause FROM feed WHERE segment = 'eco_browsers' ORDER BY change_id;
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","userId":"maya","messageId":"m3","timestamp":"2026-11-20T19:20:00Z","properties":{"category":"Sustainable Fashion"}}
]$$, workspace_id => :ws, received_at => '2026-11-20 19:20:00+00');
SELECT segment, who, change, at, cause FROM feed WHERE segment = 'eco_browsers' ORDER BY change_id;
-- The audience is a view BI tools read like a table.
SELECT cdp_internal.segment_view(:ws, 'eco_browsers') AS eco_view \gset
SELECT who(profile_id), entered_at FROM :eco_view;
-- A day later her views have aged out: the tick moves her window and she exits.
SELECT affected FROM cdp.tick('2026-11-21 20:00+00') WHERE task = 'move windowed computed traits';
SELECT segment, who, change, at, cause FROM feed WHERE segment = 'eco_browsers' ORDER BY change_id;

-- Story 2: Omer visits the WH-1000 support page twice this week (and another page once).
SELECT * FROM cdp.ingest($$[
  {"type":"page","name":"Support","userId":"omer","messageId":"o1","timestamp":"2026-11-22T09:00:00Z","properties":{"path":"/support/wh-1000"}},
  {"type":"page","name":"Support","userId":"omer","messageId":"o2","timestamp":"2026-11-22T09:05:00Z","properties":{"path":"/support/qc-45"}}
]$$, workspace_id => :ws, received_at => '2026-11-22 09:05:00+00');
SELECT * FROM cdp.ingest($$[
  {"type":"page","name":"Support","userId":"omer","messageId":"o3","timestamp":"2026-11-24T18:00:00Z","properties":{"path":"/support/wh-1000"}}
]$$, workspace_id => :ws, received_at => '2026-11-24 18:00:00+00');
SELECT segment, who, change, at FROM feed WHERE segment = 'support_seekers' ORDER BY change_id;

-- Story 3: mobile players in Asia who finished level 10 without a purchase. Kenji (mobile,
-- Asia) reaches level 10; Lena (desktop, Europe) does too; Aiko reaches level 10 but has bought.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Level Completed","userId":"kenji","messageId":"k1","timestamp":"2026-11-23T08:00:00Z","properties":{"level":9},
   "context":{"device":{"type":"mobile"},"location":{"region":"Asia"}}},
  {"type":"track","event":"Level Completed","userId":"kenji","messageId":"k2","timestamp":"2026-11-23T08:30:00Z","properties":{"level":10},
   "context":{"device":{"type":"mobile"},"location":{"region":"Asia"}}},
  {"type":"track","event":"Level Completed","userId":"lena","messageId":"l1","timestamp":"2026-11-23T08:30:00Z","properties":{"level":12},
   "context":{"device":{"type":"desktop"},"location":{"region":"Europe"}}},
  {"type":"track","event":"Order Completed","userId":"aiko","messageId":"a1","timestamp":"2026-11-23T07:00:00Z",
   "context":{"device":{"type":"mobile"},"location":{"region":"Asia"}}},
  {"type":"track","event":"Level Completed","userId":"aiko","messageId":"a2","timestamp":"2026-11-23T08:40:00Z","properties":{"level":10},
   "context":{"device":{"type":"mobile"},"location":{"region":"Asia"}}}
]$$, workspace_id => :ws, received_at => '2026-11-23 08:40:00+00');
SELECT segment, who, change FROM feed WHERE segment = 'asia_mobile_level_10' ORDER BY change_id;
-- Kenji buys: he leaves the segment in the same transaction as the order.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Order Completed","userId":"kenji","messageId":"k3","timestamp":"2026-11-23T09:00:00Z",
   "context":{"device":{"type":"mobile"},"location":{"region":"Asia"}}}
]$$, workspace_id => :ws, received_at => '2026-11-23 09:00:00+00');
SELECT segment, who, change FROM feed WHERE segment = 'asia_mobile_level_10' ORDER BY change_id;

-- Story 4: the abandoned cart. Dana adds a product and does not order within the hour: it fires
-- once (a second add inside that hour is the same occurrence). Eli orders 40 minutes after his
-- add: nothing fires.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Added","userId":"dana","messageId":"d1","timestamp":"2026-11-25T10:00:00Z"},
  {"type":"track","event":"Product Added","userId":"dana","messageId":"d2","timestamp":"2026-11-25T10:20:00Z"},
  {"type":"track","event":"Product Added","userId":"eli","messageId":"e1","timestamp":"2026-11-25T10:00:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-25 10:20:00+00');
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Order Completed","userId":"eli","messageId":"e2","timestamp":"2026-11-25T10:40:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-25 10:40:00+00');
SELECT affected FROM cdp.tick('2026-11-25 10:59+00') WHERE task = 'fire due triggers';  -- not yet due
SELECT affected FROM cdp.tick('2026-11-25 11:01+00') WHERE task = 'fire due triggers';
SELECT affected FROM cdp.tick('2026-11-25 12:00+00') WHERE task = 'fire due triggers';  -- once only
SELECT segment, who, change, at, cause FROM feed WHERE segment = 'abandoned_cart' ORDER BY change_id;
-- An order that comes after the hour does not undo a firing; a new add starts a new occurrence,
-- which a batch's own order cancels.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Added","userId":"dana","messageId":"d3","timestamp":"2026-11-25T12:10:00Z"},
  {"type":"track","event":"Order Completed","userId":"dana","messageId":"d4","timestamp":"2026-11-25T12:15:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-25 12:15:00+00');
SELECT affected FROM cdp.tick('2026-11-25 14:00+00') WHERE task = 'fire due triggers';

-- Proactive support: three errors within ten minutes fire once; the fourth starts a new count.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Error Shown","userId":"omer","messageId":"x1","timestamp":"2026-11-26T10:00:00Z"},
  {"type":"track","event":"Error Shown","userId":"omer","messageId":"x2","timestamp":"2026-11-26T10:15:00Z"},
  {"type":"track","event":"Error Shown","userId":"omer","messageId":"x3","timestamp":"2026-11-26T10:20:00Z"},
  {"type":"track","event":"Error Shown","userId":"omer","messageId":"x4","timestamp":"2026-11-26T10:22:00Z"},
  {"type":"track","event":"Error Shown","userId":"omer","messageId":"x5","timestamp":"2026-11-26T10:23:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-26 10:23:00+00');
SELECT segment, who, change, cause FROM feed WHERE segment = 'error_storm' ORDER BY change_id;

-- A merge: Maya's phone (anonymous, three eco views tonight) was in the segment on its own;
-- when she logs in there, the phone's profile exits (merged) and Maya's enters.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","anonymousId":"maya-phone","messageId":"p1","timestamp":"2026-11-27T20:00:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Product Viewed","anonymousId":"maya-phone","messageId":"p2","timestamp":"2026-11-27T20:01:00Z","properties":{"category":"Sustainable Fashion"}},
  {"type":"track","event":"Product Viewed","anonymousId":"maya-phone","messageId":"p3","timestamp":"2026-11-27T20:02:00Z","properties":{"category":"Sustainable Fashion"}}
]$$, workspace_id => :ws, received_at => '2026-11-27 20:02:00+00');
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"maya","anonymousId":"maya-phone","messageId":"p4","timestamp":"2026-11-27T20:05:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-27 20:05:00+00');
SELECT segment, who, change, at, cause FROM feed WHERE at >= '2026-11-27' ORDER BY change_id;

-- The feed, read with a cursor: at least once (the same changes until acked), in order.
SELECT count(*) AS first_read FROM cdp.read_changes('email-tool', 1000, :ws);
SELECT count(*) AS same_again FROM cdp.read_changes('email-tool', 1000, :ws);
SELECT max(change_id) AS last FROM cdp.read_changes('email-tool', 3, :ws) \gset
SELECT cdp.ack_changes('email-tool', :last, :ws);
SELECT count(*) AS after_ack FROM cdp.read_changes('email-tool', 1000, :ws);
SELECT bool_and(change_id > :last) AS only_newer FROM cdp.read_changes('email-tool', 1000, :ws);
SELECT cdp.ack_changes('email-tool', :last + 1000000, :ws);
SELECT cdp.ack_changes('nobody', 1);

-- A batch segment: any query, refreshed on demand, writing only the differences.
SELECT cdp.create_segment('big_spenders', $$SELECT e.current_profile_id FROM cdp.events_by_profile e
  WHERE e.event = 'Order Completed' AND e.workspace_id = $$ || :ws, 'batch', :ws) AS members;
SELECT cdp_internal.segment_view(:ws, 'big_spenders') AS big_view \gset
SELECT who(profile_id) FROM :big_view ORDER BY 1;
SELECT cdp.refresh_segment('big_spenders', :ws) AS changes;
SELECT cdp.redefine_segment('big_spenders', $$SELECT e.current_profile_id FROM cdp.events_by_profile e
  WHERE e.event = 'Order Completed' AND (e.properties ->> 'total')::numeric > 100 AND e.workspace_id = $$ || :ws, :ws) AS changes;
SELECT segment, who, change, cause FROM feed WHERE segment = 'big_spenders' ORDER BY change_id;
SELECT cdp.rename_segment('big_spenders', 'vip', :ws);
SELECT cdp_internal.segment_view(:ws, 'vip') AS vip_view \gset
SELECT count(*) AS vip_members FROM :vip_view;
SELECT cdp.drop_segment('vip', :ws) AS exits;
SELECT to_regclass(:'vip_view') AS view_after_drop;

-- Definitions are one expression or one SELECT: nothing else gets in.
\set VERBOSITY default
SELECT cdp.create_segment('sneaky', 'true) FROM pg_authid --', workspace_id => :ws);
SELECT cdp.create_segment('sneaky', 'true; DROP TABLE cdp.events', workspace_id => :ws);
SELECT cdp.create_segment('sneaky', 'true) AS a, (false', workspace_id => :ws);
SELECT cdp.create_segment('sneaky', 'WITH d AS (DELETE FROM cdp.segments RETURNING 1) SELECT 1', 'batch', :ws);
SELECT cdp.create_segment('sneaky', 'SELECT profile_id FROM cdp.profiles FOR UPDATE', 'batch', :ws);
SELECT cdp.create_segment('typo', 'computed.order > 0', workspace_id => :ws);
SELECT cdp.create_segment('Bad Name', 'true', workspace_id => :ws);
SELECT cdp.create_segment('weekly', 'true', 'weekly', :ws);
SELECT cdp.create_trigger('both', 'Error Shown', 'Order Completed', '1 hour', 3, :ws);
-- A computed trait a segment reads can neither go nor change its type under it.
SELECT cdp.drop_computed_trait('orders', :ws);
SELECT cdp.define_computed_trait('top_level', '{"function": "last", "event": "Level Completed", "property": "properties.name"}', :ws);
SELECT cdp.profile('user_id', 'kenji', :ws, at => '2026-11-23 10:00+00') -> 'computed' -> 'top_level' AS top_level_kept;
SELECT count(*) AS segments_left FROM cdp.segments WHERE workspace_id = :ws;
DROP VIEW feed;
DROP FUNCTION who(bigint);
DROP FUNCTION ids_of(bigint);

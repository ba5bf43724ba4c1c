-- Golden records kept by ingest: Sarah's profile learns her traits from identify calls and from
-- context.traits, in event time order; her phone's profile joins hers when she logs in there;
-- an unlink splits them again and each part keeps what its own events said.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT cdp.create_workspace('profiles-shop') AS ws \gset
INSERT INTO cdp.trait_rules (workspace_id, trait, rule) VALUES (:ws, 'interests', 'union');

-- Her phone, anonymous: the app sends what it knows in context.traits.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","anonymousId":"p-phone","messageId":"r1","timestamp":"2026-11-20T10:00:00Z",
   "context":{"traits":{"city":"Haifa","interests":["headphones"]}}}
]$$, workspace_id => :ws, received_at => '2026-11-20 10:00:01+00');
-- Her laptop: she logs in. The identify from the 19th arrives after the one from the 20th.
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"sarah","anonymousId":"p-laptop","messageId":"r2","timestamp":"2026-11-20T11:00:00Z",
   "traits":{"email":"sarah@example.com","plan":"plus"}},
  {"type":"identify","userId":"sarah","anonymousId":"p-laptop","messageId":"r3","timestamp":"2026-11-19T11:00:00Z",
   "traits":{"plan":"free","name":"Sarah Katz"}}
]$$, workspace_id => :ws, received_at => '2026-11-20 11:00:01+00');
SELECT traits, first_seen, last_seen FROM cdp.profile_records WHERE workspace_id = :ws ORDER BY first_seen;
-- Two profiles: the phone's (city, interests) and Sarah's (plus, not free: the 20th is later).

-- She logs in on the phone: the profiles merge, and so do their records.
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"sarah","anonymousId":"p-phone","messageId":"r4","timestamp":"2026-11-20T12:00:00Z",
   "traits":{"city":"Tel Aviv","interests":["laptops"]}}
]$$, workspace_id => :ws, received_at => '2026-11-20 12:00:01+00');
SELECT jsonb_pretty(traits) AS traits, first_seen, last_seen FROM cdp.profile_records WHERE workspace_id = :ws;
-- One profile: city from the latest identify, interests the union of both devices', first seen
-- on the 19th, last seen at noon. Each trait says where it came from: the event that carried the
-- surviving value (for interests, a union, the latest that added to it).
SELECT key AS trait, value FROM cdp.profile_records, jsonb_each(trait_sources)
WHERE workspace_id = :ws ORDER BY key;
-- The record matches a rebuild from all her events.
SELECT r.traits = cdp.merge_traits(t.traits, t.ts, NULL, :ws) AS same_as_a_rebuild
FROM cdp.profile_records r, LATERAL (
  SELECT CASE WHEN e.type = 'identify' THEN e.traits ELSE e.context -> 'traits' END AS traits, e."timestamp" AS ts
  FROM cdp.events e WHERE e.workspace_id = :ws) t
WHERE r.workspace_id = :ws GROUP BY r.traits;

-- The phone was a shared device after all: unlink it. The phone's part keeps what its own events
-- said (the anonymous view's context.traits, and the identify that linked it, which named
-- Sarah's user id and so stays with her).
SELECT identifiers FROM cdp.unlink('user_id', 'sarah', 'anonymous_id', 'p-phone', workspace_id => :ws) ORDER BY identifiers;
SELECT traits, first_seen, last_seen FROM cdp.profile_records WHERE workspace_id = :ws ORDER BY first_seen;
SELECT trait_sources -> 'city' AS city_from FROM cdp.profile_records WHERE workspace_id = :ws ORDER BY first_seen;
-- Records rebuilt from events and records kept by ingest are one thing: an identify from the
-- 18th, arriving now, does not overwrite the plan of the 20th in the rebuilt record.
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"sarah","messageId":"r6","timestamp":"2026-11-18T09:00:00Z","traits":{"plan":"trial"}}
]$$, workspace_id => :ws, received_at => '2026-11-21 08:00:01+00');
SELECT traits ->> 'plan' AS plan, trait_sources -> 'plan' ->> 'event_id' AS from_event
FROM cdp.profile_records WHERE workspace_id = :ws AND traits ? 'email';

-- With cdp.update_profiles off, ingest leaves the records alone.
SET cdp.update_profiles = off;
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"sarah","messageId":"r5","timestamp":"2026-11-21T09:00:00Z","traits":{"plan":"pro"}}
]$$, workspace_id => :ws, received_at => '2026-11-21 09:00:01+00');
SELECT traits ->> 'plan' AS plan_still FROM cdp.profile_records
WHERE workspace_id = :ws AND traits ? 'email';
RESET cdp.update_profiles;
-- A rebuild catches up with what ingest skipped (and applies rules changed since).
SELECT cdp.rebuild_profile_records(:ws) AS profiles_rebuilt;
SELECT traits ->> 'plan' AS plan_now FROM cdp.profile_records
WHERE workspace_id = :ws AND traits ? 'email';

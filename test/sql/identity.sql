-- Identity stitching: one profile per person across devices, without merging people who share
-- a device, and never on junk identifiers.
CREATE EXTENSION IF NOT EXISTS cdp;

-- Sarah browses on her phone, then on her laptop: two anonymous visitors, two profiles.
SELECT * FROM cdp.ingest('[
  {"type":"page","anonymousId":"sarah-phone","messageId":"id-1","timestamp":"2026-11-20T08:00:00Z"},
  {"type":"page","anonymousId":"sarah-laptop","messageId":"id-2","timestamp":"2026-11-20T12:00:00Z"}]',
  received_at => '2026-11-20 12:00:01+00');
SELECT cdp.same_person('anonymous_id', 'sarah-phone', 'anonymous_id', 'sarah-laptop') AS same_before_login;

-- She logs in on both (her email typed with capitals and spaces on the phone): one profile,
-- the older one, and every event of hers belongs to it now.
SELECT * FROM cdp.ingest('[
  {"type":"identify","userId":"sarah","anonymousId":"sarah-phone","messageId":"id-3",
   "traits":{"email":"  Sarah@Example.COM "},"timestamp":"2026-11-21T08:00:00Z"},
  {"type":"identify","userId":"sarah","anonymousId":"sarah-laptop","messageId":"id-4","timestamp":"2026-11-21T09:00:00Z"}]',
  received_at => '2026-11-21 12:00:01+00');
SELECT cdp.same_person('anonymous_id', 'sarah-phone', 'anonymous_id', 'sarah-laptop') AS same_after_login,
       cdp.resolve('email', 'sarah@example.com') = cdp.resolve('user_id', 'sarah') AS email_resolves,
       cdp.normalise_identifier('email', '  Sarah@Example.COM ') AS stored_email;
SELECT count(DISTINCT current_profile_id) AS profiles, count(*) AS events,
       count(*) FILTER (WHERE profile_id <> current_profile_id) AS attributed_through_the_map
FROM cdp.events_by_profile WHERE event_id LIKE 'id-%';
SELECT kind, a_type, a_value, b_type, b_value, reason, event_id,
       profile_id < other_profile_id AS oldest_profile_survives
FROM cdp.identity_changes WHERE kind = 'merge';

-- Why is the laptop Sarah's? The path of edges to her strongest identifier.
SELECT step, from_type, from_value, to_type, to_value, source, event_id
FROM cdp.explain_identity('anonymous_id', 'sarah-laptop');

-- Where her edges are kept. An edge that brings a new identifier into the graph is held in
-- that identifier's row: her user id, new at login, holds its edge to the laptop (the first of
-- its edges in key order). The phone's edge came in the same batch, when her user id held one
-- already and the phone was stored: it has a row of its own. So has the refused edge to her
-- email, which an earlier test stored for another user id.
SELECT e.a_value, e.b_value, e.source, e.event_id, e.merged, e.reason, coalesce(h.id_value, '(own row)') AS held_by
FROM cdp.identity_edges e LEFT JOIN cdp.identifiers h
  ON h.via_value IS NOT NULL AND (h.id_value, h.via_value) IN ((e.a_value, e.b_value), (e.b_value, e.a_value))
WHERE 'sarah' IN (e.a_value, e.b_value) ORDER BY 1;
-- Seen again, a held edge's last seen moves forward, never back, and it stays where it is.
SELECT * FROM cdp.ingest('[
  {"type":"track","event":"Viewed","userId":"sarah","anonymousId":"sarah-laptop","messageId":"seen-1","timestamp":"2026-11-23T08:00:00Z"},
  {"type":"track","event":"Viewed","userId":"sarah","anonymousId":"sarah-laptop","messageId":"seen-2","timestamp":"2026-11-22T08:00:00Z"}]');
SELECT * FROM cdp.ingest('{"type":"track","event":"Viewed","userId":"sarah","anonymousId":"sarah-laptop","messageId":"seen-3","timestamp":"2026-11-21T10:00:00Z"}');
SELECT first_seen, last_seen, (SELECT via_value FROM cdp.identifiers WHERE id_value = 'sarah') AS held_by_sarah_to,
       (SELECT count(*) FROM cdp_internal.identity_edges WHERE a_value = 'sarah-laptop') AS own_rows
FROM cdp.identity_edges WHERE a_value = 'sarah-laptop' AND b_value = 'sarah';

-- A shared kiosk: twenty people log in on one device. A profile holds one user_id, so the
-- device stays with the first; the other nineteen get profiles of their own, and each refused
-- edge is kept with its reason.
SELECT * FROM cdp.ingest((SELECT jsonb_agg(jsonb_build_object(
    'type', 'identify', 'userId', 'kiosk-user-' || g, 'messageId', 'kiosk-' || g,
    'context', jsonb_build_object('device', jsonb_build_object('id', 'KIOSK-7')),
    'timestamp', '2026-11-22T10:00:00Z'))::text FROM generate_series(1, 20) g), received_at => '2026-11-22 10:00:01+00');
SELECT count(DISTINCT profile_id) AS kiosk_profiles FROM cdp.events WHERE event_id LIKE 'kiosk-%';
SELECT merged, reason, count(*) FROM cdp.identity_edges WHERE a_value = 'KIOSK-7' OR b_value = 'KIOSK-7'
GROUP BY 1, 2 ORDER BY 1 DESC;
SELECT count(*) AS refusals_recorded FROM cdp.identity_changes WHERE kind = 'refused';
-- Each refused kiosk edge names the profiles of its two ends, which stay apart.
SELECT count(*) AS with_both_profiles FROM cdp.identity_changes
WHERE kind = 'refused' AND 'KIOSK-7' IN (a_value, b_value)
  AND profile_id IS NOT NULL AND other_profile_id IS NOT NULL AND profile_id <> other_profile_id;

-- A signed-in user's event linking two ids her profile already holds (no limit to check), in
-- the same batch as one that would break a limit: the sixth device is refused all the same.
SELECT * FROM cdp.ingest((SELECT jsonb_agg(jsonb_build_object('type', 'identify', 'userId', 'dana',
    'messageId', 'dana-' || g, 'context', jsonb_build_object('device', jsonb_build_object('id', 'dana-device-' || g))))::text
  FROM generate_series(1, 5) g));
SELECT * FROM cdp.ingest('[
  {"type":"track","event":"Viewed","userId":"dana","messageId":"dana-known","context":{"device":{"id":"dana-device-1"}}},
  {"type":"track","event":"Viewed","userId":"dana","messageId":"dana-sixth","context":{"device":{"id":"dana-device-6"}}}]');
SELECT count(*) AS danas_devices FROM cdp.identifiers
WHERE id_type = 'device_id' AND profile_id = cdp.resolve('user_id', 'dana');
SELECT merged, reason FROM cdp.identity_edges WHERE 'dana-device-6' IN (a_value, b_value);

-- Junk identifiers never link: two people whose SDK sent "undefined" and a zero device id.
SELECT * FROM cdp.ingest('[
  {"type":"identify","userId":"ann","anonymousId":"undefined","messageId":"junk-1",
   "context":{"device":{"id":"00000000-0000-0000-0000-000000000000"}}},
  {"type":"identify","userId":"bob","anonymousId":"undefined","messageId":"junk-2",
   "context":{"device":{"id":"00000000-0000-0000-0000-000000000000"}}}]');
SELECT cdp.same_person('user_id', 'ann', 'user_id', 'bob') AS ann_is_bob,
       count(*) FILTER (WHERE id_value IN ('undefined', '00000000-0000-0000-0000-000000000000')) AS junk_stored
FROM cdp.identifiers;

-- Unlink: the laptop was not Sarah's after all. Her profile splits; the laptop's events move
-- with it, and a later event linking the two again does not undo the decision.
SELECT profile_id = cdp.resolve('user_id', 'sarah') AS kept_by_sarah, identifiers
FROM cdp.unlink('user_id', 'sarah', 'anonymous_id', 'sarah-laptop') ORDER BY 2 DESC;
SELECT event_id, current_profile_id = cdp.resolve('user_id', 'sarah') AS sarahs
FROM cdp.events_by_profile WHERE event_id LIKE 'id-%' ORDER BY event_id;
SELECT * FROM cdp.ingest('{"type":"identify","userId":"sarah","anonymousId":"sarah-laptop","messageId":"id-5"}');
SELECT cdp.same_person('user_id', 'sarah', 'anonymous_id', 'sarah-laptop') AS relinked,
       (SELECT reason FROM cdp.identity_edges WHERE b_value = 'sarah-laptop' OR a_value = 'sarah-laptop') AS edge;
SELECT kind, reason FROM cdp.identity_changes WHERE kind IN ('split', 'unlink') ORDER BY change_id;

-- Block: a value found to be shared junk is blocked; it leaves its profile and links nothing.
SELECT identifiers FROM cdp.block_identifier('email', 'sarah@example.com');
SELECT cdp.resolve('email', 'sarah@example.com') AS blocked_resolves_to;
-- Every edge of a blocked value is cut, at either end. Dana's user id is the b end of her five
-- merged device edges and of the refused sixth: her devices fall apart, one profile each.
SELECT identifiers FROM cdp.block_identifier('user_id', 'dana');
SELECT merged, reason, count(*) FROM cdp.identity_edges WHERE 'dana' IN (a_value, b_value) GROUP BY 1, 2;

-- A custom identifier: the CRM's customer number, sent as a trait. Two devices whose users
-- carry the same number are one person; a CRM id holds one value per profile.
INSERT INTO cdp.identity_rules (workspace_id, id_type, priority, max_per_profile, trait_key)
VALUES (1, 'crm_id', 2, 1, 'crmNumber');
SELECT * FROM cdp.ingest('[
  {"type":"identify","anonymousId":"crm-tablet","messageId":"crm-1","traits":{"crmNumber":90210}},
  {"type":"track","event":"Order Completed","anonymousId":"crm-desktop","messageId":"crm-2",
   "context":{"traits":{"crmNumber":"90210"}}},
  {"type":"identify","anonymousId":"crm-other","messageId":"crm-3","traits":{"crmNumber":"11111"}}]');
SELECT cdp.same_person('anonymous_id', 'crm-tablet', 'anonymous_id', 'crm-desktop') AS same_customer,
       cdp.same_person('anonymous_id', 'crm-tablet', 'anonymous_id', 'crm-other') AS other_customer,
       cdp.resolve('crm_id', '90210') = cdp.resolve('anonymous_id', 'crm-desktop') AS crm_resolves;

-- A limit lowered after the fact: Lena's profile holds two emails, then a profile may hold one.
-- Her new tablet still joins her (it adds no email); a third email does not.
SELECT * FROM cdp.ingest('[
  {"type":"identify","userId":"lena","messageId":"lena-1","traits":{"email":"lena@home.example"}},
  {"type":"identify","userId":"lena","messageId":"lena-2","traits":{"email":"lena@work.example"}}]');
INSERT INTO cdp.identity_rules (workspace_id, id_type, priority, max_per_profile) VALUES (1, 'email', 2, 1);
SELECT * FROM cdp.ingest('[
  {"type":"identify","userId":"lena","anonymousId":"lena-tablet","messageId":"lena-3"},
  {"type":"identify","userId":"lena","messageId":"lena-4","traits":{"email":"lena@new.example"}}]');
SELECT cdp.same_person('user_id', 'lena', 'anonymous_id', 'lena-tablet') AS tablet_joins,
       cdp.same_person('user_id', 'lena', 'email', 'lena@new.example') AS third_email_joins,
       (SELECT reason FROM cdp.identity_edges WHERE a_value = 'lena@new.example') AS third_email_edge;
DELETE FROM cdp.identity_rules WHERE workspace_id = 1 AND id_type = 'email';

-- Connected components over any edge query, the composable operator.
SELECT node, component FROM cdp.connected_components(
    $$SELECT * FROM (VALUES ('a', 'b'), ('b', 'c'), ('x', 'y'), ('null', 'a'), ('z', NULL)) AS e(l, r)$$, apply_rules => true)
ORDER BY node;

-- Columns of any type (through their text form), and a query without rows.
SELECT node, component FROM cdp.connected_components('SELECT g, g + 1 FROM generate_series(1, 5, 2) g') ORDER BY node;
SELECT count(*) AS no_rows FROM cdp.connected_components('SELECT 1::text, 2::text WHERE false');

-- Many edges (batches are handed to a second thread when max_parallel_workers_per_gather allows
-- it): 30000 edges of chains n1-n2-...-n100, n101-...-n200, ... (one edge in 100 left out, so
-- 300 chains of 100 nodes), read in an order that mixes them. Each node's component is the
-- smallest name (bytewise) of its chain, as SQL computes it; with one process the answer is the same.
CREATE TEMP TABLE chain_edges AS
  SELECT 'n' || g AS a, 'n' || (g + 1) AS b FROM generate_series(1, 30000) g WHERE g % 100 <> 0
  ORDER BY hashint4(g);
CREATE TEMP TABLE chain_expected AS
  SELECT 'n' || g AS node, min(('n' || g) COLLATE "C") OVER (PARTITION BY (g - 1) / 100) AS component
  FROM generate_series(1, 30000) g;
SELECT count(*) AS nodes, count(DISTINCT component) AS components,
       count(*) FILTER (WHERE (node, component) NOT IN (SELECT * FROM chain_expected)) AS wrong
FROM cdp.connected_components('SELECT a, b FROM chain_edges');
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS nodes, count(DISTINCT component) AS components,
       count(*) FILTER (WHERE (node, component) NOT IN (SELECT * FROM chain_expected)) AS wrong
FROM cdp.connected_components('SELECT a, b FROM chain_edges');
RESET max_parallel_workers_per_gather;

-- Unlinking an edge held in a row: Omar's user id, new with his phone, holds its edge to it.
-- The edge leaves the row for a row of its own, cut, and the phone leaves his profile.
SELECT * FROM cdp.ingest('{"type":"identify","userId":"omar","anonymousId":"omar-phone","messageId":"omar-1","timestamp":"2026-11-24T08:00:00Z"}');
SELECT id_value, via_type, via_value FROM cdp.identifiers WHERE id_value IN ('omar', 'omar-phone') ORDER BY 1;
SELECT profile_id = cdp.resolve('user_id', 'omar') AS kept_by_omar, identifiers
FROM cdp.unlink('anonymous_id', 'omar-phone', 'user_id', 'omar') ORDER BY 2 DESC, 1 DESC;
SELECT a_value, b_value, merged, reason, event_id, first_seen FROM cdp_internal.identity_edges WHERE b_value = 'omar';
SELECT count(*) AS rows_holding_it FROM cdp.identifiers WHERE via_value IS NOT NULL AND 'omar' IN (id_value, via_value);
SELECT cdp.same_person('user_id', 'omar', 'anonymous_id', 'omar-phone') AS still_linked;

-- Bad calls: clear errors, and the session goes on.
SELECT * FROM cdp.unlink('user_id', 'sarah', 'user_id', 'nobody');
SELECT * FROM cdp.explain_identity('email', 'not-an-email');
SELECT * FROM cdp.connected_components('SELECT 1');
SET cdp.phone_default_country = 'Atlantis';
SELECT 1 AS still_usable;

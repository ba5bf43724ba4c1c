-- Privacy by design: consent that audiences follow, erasure that leaves nothing behind and keeps
-- the person's next events out, and subject access that returns everything and nothing of
-- anyone else.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT cdp.create_workspace('privacy-shop') AS ws \gset

-- Erasure keeps keyed hashes only: it needs the workspace's secret, and a long one.
\set VERBOSITY default
SELECT cdp.forget('email', 'nobody@example.com', :ws);
SELECT cdp.set_secret('short', :ws);
SELECT cdp.set_secret('a-long-random-secret-for-tests-only', :ws);

-- A marketing audience: viewers who granted marketing consent.
SELECT cdp.define_computed_trait('views', '{"function": "count", "event": "Product Viewed"}', :ws);
SELECT cdp.create_segment('promo_audience', 'computed.views >= 1', workspace_id => :ws, purpose => 'marketing');
SELECT cdp.create_segment('all_viewers', 'computed.views >= 1', workspace_id => :ws);

-- Rivka consents to marketing in her first event; Tal's banner lists only analytics (a category
-- not listed is not granted).
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","userId":"rivka","messageId":"r1","timestamp":"2026-11-20T10:00:00Z",
   "context":{"consent":{"categoryPreferences":{"marketing":true,"analytics":true}}}},
  {"type":"track","event":"Product Viewed","userId":"tal","messageId":"t1","timestamp":"2026-11-20T10:00:00Z",
   "context":{"consent":{"categoryPreferences":{"analytics":true}}}}
]$$, workspace_id => :ws, received_at => '2026-11-20 10:00:01+00');
SELECT s.segment, i.id_value AS who, s.change, s.cause FROM cdp.segment_changes s
JOIN cdp.identifiers i ON i.profile_id = s.profile_id AND i.id_type = 'user_id'
WHERE s.workspace_id = :ws ORDER BY s.change_id;
-- She withdraws marketing consent on the site's banner: she leaves the marketing audience in
-- that batch, and stays among all viewers.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Consent Updated","userId":"rivka","messageId":"r2","timestamp":"2026-11-21T09:00:00Z",
   "context":{"consent":{"categoryPreferences":{"marketing":false,"analytics":true}}}}
]$$, workspace_id => :ws, received_at => '2026-11-21 09:00:01+00');
-- An older banner answer arriving late does not bring the consent back.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Consent Updated","userId":"rivka","messageId":"r0","timestamp":"2026-11-19T09:00:00Z",
   "context":{"consent":{"categoryPreferences":{"marketing":true}}}}
]$$, workspace_id => :ws, received_at => '2026-11-21 09:05:00+00');
-- Tal grants it through the API (a CRM's preference centre).
SELECT cdp.set_consent('user_id', 'tal', 'marketing', true, 'preference-centre', :ws);
SELECT s.segment, i.id_value AS who, s.change, s.cause FROM cdp.segment_changes s
JOIN cdp.identifiers i ON i.profile_id = s.profile_id AND i.id_type = 'user_id'
WHERE s.workspace_id = :ws ORDER BY s.change_id;
SELECT i.id_value AS who, c.purpose, c.granted, c.source FROM cdp.consent c
JOIN cdp.identifiers i ON i.profile_id = c.profile_id AND i.id_type = 'user_id'
WHERE c.workspace_id = :ws ORDER BY 1, 2;

-- Yosef: two devices joined by a login, an email, an event a tracker broke (rejected, his email
-- in its raw text), consent, an audience; and a family tablet Tal signed in on first, which
-- stays Tal's (the edge from it to Yosef refused, his user id at its b end).
SELECT * FROM cdp.ingest($$[
  {"type":"identify","userId":"tal","anonymousId":"family-tablet","messageId":"t2","timestamp":"2026-11-22T09:00:00Z"},
  {"type":"identify","userId":"yosef-7","anonymousId":"family-tablet","messageId":"y-tablet","timestamp":"2026-11-22T09:30:00Z"},
  {"type":"track","event":"Product Viewed","anonymousId":"yosef-phone","messageId":"y1","timestamp":"2026-11-22T10:00:00Z"},
  {"type":"identify","userId":"yosef-7","anonymousId":"yosef-laptop","messageId":"y2","timestamp":"2026-11-22T11:00:00Z",
   "traits":{"email":"Yosef.Levi@Example.com","city":"Beer Sheva"},
   "context":{"consent":{"categoryPreferences":{"marketing":true}}}},
  {"type":"identify","userId":"yosef-7","anonymousId":"yosef-phone","messageId":"y3","timestamp":"2026-11-22T12:00:00Z"},
  {"type":"track","userId":"yosef-7","messageId":"y4","properties":{"note":"mail Yosef.Levi@Example.com"}}
]$$, workspace_id => :ws, received_at => '2026-11-22 12:00:01+00');
SELECT count(*) AS yosef_events FROM cdp.events_by_profile WHERE workspace_id = :ws
  AND current_profile_id = cdp.resolve('email', 'yosef.levi@example.com', :ws);

-- He asks for everything held on him: his events, identifiers, consent, audiences; nobody else's.
SELECT cdp.subject_access('email', 'YOSEF.LEVI@example.com', :ws) AS access \gset
SELECT jsonb_array_length(:'access'::jsonb -> 'events') AS events,
       :'access'::jsonb -> 'profile' -> 'identifiers' AS identifiers,
       :'access'::jsonb -> 'profile' -> 'traits' AS traits,
       (SELECT jsonb_agg(c -> 'purpose') FROM jsonb_array_elements(:'access'::jsonb -> 'consent') c) AS consent,
       (SELECT jsonb_agg(s -> 'segment') FROM jsonb_array_elements(:'access'::jsonb -> 'segments') s) AS segments;
-- The edges that name any of his identifiers, at either end (what erasure deletes).
SELECT g ->> 'a_value' AS a, g ->> 'b_value' AS b, g -> 'merged' AS merged, g ->> 'reason' AS reason
FROM jsonb_array_elements(:'access'::jsonb -> 'identity_edges') g ORDER BY 1, 2;
SELECT count(*) AS events_of_anyone_else FROM jsonb_array_elements(:'access'::jsonb -> 'events') e
WHERE coalesce(e ->> 'user_id', '') <> 'yosef-7' AND e ->> 'anonymous_id' NOT IN ('yosef-phone', 'yosef-laptop');

-- He asks to be forgotten. The receipt says what went, per table; he exits his audiences first.
SELECT jsonb_pretty(cdp.forget('email', ' Yosef.Levi@EXAMPLE.com', :ws) - 'at' - 'request_id' - 'subject' - 'workspace_id');
SELECT s.segment, s.change, s.cause FROM cdp.segment_changes s
WHERE s.workspace_id = :ws AND s.cause = 'erased' ORDER BY s.change_id;
SELECT kind, id_type, status, receipt -> 'deleted' ->> 'events' AS events_deleted FROM cdp.privacy_requests
WHERE workspace_id = :ws ORDER BY request_id;

-- Nothing of his is left anywhere: every relation of the extension's schemas that stores rows
-- (tables, materialised views) is searched for each of his identifiers (a table added later
-- without erasure support fails here). Views store nothing: they show what these hold.
CREATE FUNCTION tables_holding(needles text[]) RETURNS TABLE (relation text, hits bigint) LANGUAGE plpgsql AS $$
DECLARE
    r regclass;
    n bigint;
BEGIN
    FOR r IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE s.nspname IN ('cdp', 'cdp_internal', 'cdp_audiences', 'cdp_analyst') AND c.relkind IN ('r', 'p', 'm')
             ORDER BY 1::text LOOP
        EXECUTE format('SELECT count(*) FROM %s t WHERE EXISTS (SELECT FROM unnest($1) AS n WHERE strpos(lower(t::text), lower(n)) > 0)', r)
        INTO n USING needles;
        IF n > 0 THEN relation := r::text; hits := n; RETURN NEXT; END IF;
    END LOOP;
END $$;
SELECT * FROM tables_holding(ARRAY['yosef-7', 'yosef-phone', 'yosef-laptop', 'yosef.levi@example.com', 'Beer Sheva']);
-- Others are untouched.
SELECT * FROM tables_holding(ARRAY['rivka']) ORDER BY 1;

-- His next event, from any of his identifiers, is suppressed: counted as rejected, its payload
-- not kept; events of others in the same batch land.
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Product Viewed","userId":"yosef-7","messageId":"y5","timestamp":"2026-11-23T10:00:00Z"},
  {"type":"identify","anonymousId":"new-device","messageId":"y6","timestamp":"2026-11-23T10:00:00Z","traits":{"email":"yosef.levi@example.com"}},
  {"type":"track","event":"Product Viewed","userId":"rivka","messageId":"r3","timestamp":"2026-11-23T10:00:00Z"}
]$$, workspace_id => :ws, received_at => '2026-11-23 10:00:01+00');
SELECT reason, detail, raw = '' AS payload_not_kept, message_id FROM cdp.rejected_events
WHERE workspace_id = :ws AND reason = 'suppressed' ORDER BY item_index;
SELECT * FROM tables_holding(ARRAY['yosef-7', 'new-device', 'yosef.levi@example.com']);
-- Lifting the tombstone of his user id lets that identifier back in (the email stays suppressed).
SELECT cdp.unsuppress('user_id', 'yosef-7', :ws) AS lifted, cdp.unsuppress('user_id', 'never-erased', :ws) AS not_there;
SELECT accepted, rejected FROM cdp.ingest('{"type":"track","event":"Product Viewed","userId":"yosef-7","messageId":"y7"}',
                                          workspace_id => :ws);
SELECT accepted, rejected FROM cdp.ingest('{"type":"identify","userId":"x-9","traits":{"email":"YOSEF.LEVI@example.com"},"messageId":"y8"}',
                                          workspace_id => :ws);
-- The secret cannot change under existing tombstones (they would stop matching).
SELECT cdp.set_secret('another-long-random-secret-value', :ws);

-- Hostile identifiers go in, are found, and are forgotten like any other: quotes, backslashes,
-- dollar quotes, SQL fragments, a long value.
SELECT accepted, rejected FROM cdp.ingest(json_build_array(
  json_build_object('type', 'identify', 'userId', $v$o'brien\"; DROP TABLE cdp.events; --$v$, 'messageId', 'h1',
                    'traits', json_build_object($k$we'ird$$key$k$, $v$$$ || pg_sleep(1) || $$$v$)),
  json_build_object('type', 'track', 'event', $e$Event'); DELETE FROM cdp.events; --$e$, 'userId', repeat('hostile-', 250), 'messageId', 'h2')
)::text, workspace_id => :ws);
SELECT traits FROM cdp.profile_records WHERE workspace_id = :ws AND profile_id = cdp.resolve('user_id', $v$o'brien\"; DROP TABLE cdp.events; --$v$, :ws);
SELECT (cdp.forget('user_id', $v$o'brien\"; DROP TABLE cdp.events; --$v$, :ws) -> 'deleted' ->> 'events') AS events_deleted,
       (cdp.forget('user_id', repeat('hostile-', 250), :ws) -> 'deleted' ->> 'events') AS long_events_deleted;
SELECT * FROM tables_holding(ARRAY[$v$o'brien\"$v$, repeat('hostile-', 250), $k$we'ird$$key$k$]);
SELECT count(*) > 0 AS events_table_still_there FROM cdp.events;
-- A NUL inside an identifier or a trait key is refused with its reason, and the rest lands.
SELECT accepted, rejected FROM cdp.ingest('[{"type":"identify","userId":"nul\u0000id","messageId":"h3"},
  {"type":"identify","userId":"fine-user","traits":{"k\u0000ey":"v"},"messageId":"h4"},
  {"type":"identify","userId":"fine-user-2","messageId":"h5"}]', workspace_id => :ws);
SELECT reason, item_index FROM cdp.rejected_events WHERE workspace_id = :ws AND message_id IN ('h3', 'h4') ORDER BY item_index;
-- An erased customer's row in a registered CRM table links nothing at the next sync.
CREATE TABLE privacy_crm (customer_id text, email text, updated_at timestamptz);
INSERT INTO privacy_crm VALUES ('c-1', 'yosef.levi@example.com', '2026-11-01'), ('c-2', 'dana@example.com', '2026-11-02');
SELECT cdp.add_source('privacy_crm', 'privacy_crm', '{"user_id": "customer_id", "email": "email"}', workspace_id => :ws);
SELECT rows_read, rows_linked, rows_rejected FROM cdp.sync_source('privacy_crm', :ws);
SELECT reason, raw = '' AS payload_not_kept FROM cdp.rejected_events WHERE workspace_id = :ws AND detail LIKE 'source privacy_crm:%';
SELECT cdp.resolve('email', 'yosef.levi@example.com', :ws) IS NULL AS yosef_unknown,
       cdp.resolve('email', 'dana@example.com', :ws) IS NOT NULL AS dana_linked;
SELECT cdp.drop_source('privacy_crm', :ws);
DROP TABLE privacy_crm;
SELECT cdp.forget('email', 'not an email', :ws);
SELECT cdp.subject_access('user_id', 'yosef-never', :ws);
DROP FUNCTION tables_holding(text[]);

-- Tracking plans. Order Completed must carry an order id like o-123 and a numeric total (blocked
-- otherwise); Product Viewed may carry only sku and price (flagged otherwise); event names are
-- "Object Action" in Title Case, and events no plan names are flagged.
INSERT INTO cdp.tracking_plans (workspace_id, event, schema, mode) VALUES
  (:ws, 'Order Completed', '{"properties": {"type": "object", "required": ["order_id", "total"],
     "properties": {"order_id": {"type": "string", "pattern": "^o-[0-9]+$"}, "total": {"type": "number", "minimum": 0}}}}', 'block'),
  (:ws, 'Product Viewed', '{"properties": {"type": "object", "additionalProperties": false,
     "properties": {"sku": {"type": "string"}, "price": {"type": "number"}}}}', 'flag');
INSERT INTO cdp.tracking_settings (workspace_id, naming, unplanned) VALUES (:ws, 'title_case', 'flag');
SELECT * FROM cdp.ingest($$[
  {"type":"track","event":"Order Completed","userId":"rivka","messageId":"tp1","properties":{"order_id":"o-1","total":20}},
  {"type":"track","event":"Order Completed","userId":"rivka","messageId":"tp2","properties":{"order_id":"1","total":"20"}},
  {"type":"track","event":"Order Completed","userId":"rivka","messageId":"tp3","properties":{"total":-5}},
  {"type":"track","event":"Product Viewed","userId":"rivka","messageId":"tp4","properties":{"sku":"A","colour":"red"}},
  {"type":"track","event":"productShared","userId":"rivka","messageId":"tp5"}
]$$, workspace_id => :ws);
SELECT message_id, reason, jsonb_path_query_array(detail::jsonb, '$[*].type') AS violations,
       jsonb_path_query_array(detail::jsonb, '$[*].path') AS paths
FROM cdp.rejected_events WHERE workspace_id = :ws AND reason = 'schema_violation' ORDER BY message_id;
SELECT v.event_id, v.event, jsonb_path_query_array(v.violations, '$[*].type') AS violations,
       jsonb_path_query_array(v.violations, '$[*].path') AS paths, e.event_id IS NOT NULL AS landed
FROM cdp.tracking_violations v LEFT JOIN cdp.events e ON e.workspace_id = v.workspace_id AND e.event_id = v.event_id
WHERE v.workspace_id = :ws ORDER BY v.event_id;
INSERT INTO cdp.tracking_plans (workspace_id, event, schema) VALUES (:ws, 'Bad Plan', '{"properties": {"type": "text"}}');

-- Consent at ingest: this shop needs analytics consent. An event without it is dropped (no
-- payload kept); for personalization it is stripped of the person but still counted.
INSERT INTO cdp.consent_policies (workspace_id, purpose, at_ingest) VALUES (:ws, 'analytics', 'drop'), (:ws, 'personalization', 'strip');
SELECT accepted, rejected FROM cdp.ingest($$[
  {"type":"track","event":"Page Scrolled","userId":"noam","messageId":"c1","context":{"consent":{"categoryPreferences":{"analytics":false}}}},
  {"type":"track","event":"Page Scrolled","userId":"noam","messageId":"c2"},
  {"type":"track","event":"Page Scrolled","userId":"noam","messageId":"c3","traits":{"email":"noam@example.com"},
   "context":{"ip":"203.0.113.9","consent":{"categoryPreferences":{"analytics":true}}}},
  {"type":"track","event":"Page Scrolled","userId":"noam","messageId":"c4",
   "context":{"consent":{"categoryPreferences":{"analytics":true,"personalization":true}}}}
]$$, workspace_id => :ws);
SELECT message_id IS NULL AS no_message_id, reason, raw = '' AS payload_not_kept FROM cdp.rejected_events
WHERE workspace_id = :ws AND reason = 'no_consent' ORDER BY item_index;
SELECT event_id, user_id, anonymous_id LIKE 'stripped:%' AS stripped, ip, traits, context, profile_id IS NULL AS no_profile
FROM cdp.events WHERE workspace_id = :ws AND event = 'Page Scrolled' ORDER BY event_id;
DELETE FROM cdp.consent_policies WHERE workspace_id = :ws;
-- A consumer that activates for marketing reads enters only of people who grant it now (Rivka
-- withdrew; Tal granted), and every exit.
SELECT s.segment, i.id_value AS who, s.change FROM cdp.read_changes('ads-tool', 100, :ws, purpose => 'marketing') s
JOIN cdp.identifiers i ON i.profile_id = s.profile_id AND i.id_type = 'user_id' ORDER BY s.change_id;

-- Bad input gets a clear answer and nothing is lost: each bad item goes to
-- cdp.rejected_events with its raw text, a stable reason and a detail; good items of the
-- same batch still land.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET cdp.max_batch_bytes = '600kB';

SELECT * FROM cdp.ingest($$[
  {"type": "track", "event": "Good One", "userId": "u1", "messageId": "ok-1", "timestamp": "2026-11-20T10:00:00Z"},
  "not an object",
  {"type": "track", "userId": "u1", "messageId": "no-event-name"},
  {"type": "identify", "messageId": "nobody", "traits": {"email": "x@example.com"}},
  {"type": "jump", "userId": "u1", "messageId": "bad-type"},
  {"event": "No Type", "userId": "u1", "messageId": "no-type"},
  {"type": "alias", "userId": "u1", "messageId": "alias-without-previous"},
  {"type": "group", "userId": "u1", "messageId": "group-without-id"},
  {"type": "track", "event": "T", "userId": {"id": 1}, "messageId": "object-user-id"},
  {"type": "track", "event": "T", "userId": "u1", "messageId": "props-array", "properties": [1, 2]},
  {"type": "track", "event": "T", "userId": "u1", "messageId": "bad-time", "timestamp": "yesterday"},
  {"type": "track", "event": "T", "userId": "u1", "messageId": "ancient", "timestamp": "0001-01-01T00:00:00Z"},
  {"type": "track", "event": "T", "userId": "u1", "messageId": "future", "timestamp": "2099-01-01T00:00:00Z"},
  {"type": "track", "event": "T", "userId": "u1", "messageId": "nul", "properties": {"note": "a\u0000b"}},
  {"type": "track", "event": "Good Two", "anonymousId": "a1", "messageId": "ok-2", "timestamp": "2026-11-20T10:01:00Z"}
]$$, received_at => '2026-11-20 10:05:00+00');

SELECT item_index, reason, message_id, detail FROM cdp.rejected_events ORDER BY rejected_id;
SELECT event_id FROM cdp.events ORDER BY event_id;

-- The raw text of a rejected item is exactly what was sent.
SELECT raw FROM cdp.rejected_events WHERE message_id = 'bad-type';

-- A whole payload that is not JSON: one rejection holding all of it.
SELECT * FROM cdp.ingest('{"type": "track", "event": "Oops", "userId": ', received_at => '2026-11-20 10:06:00+00');
SELECT reason, item_index, detail, raw FROM cdp.rejected_events WHERE reason = 'invalid_json';

-- A lone surrogate escape is not text.
SELECT * FROM cdp.ingest('{"type":"track","event":"\ud800","userId":"u1"}', received_at => '2026-11-20 10:06:00+00');
SELECT reason, detail FROM cdp.rejected_events WHERE reason = 'invalid_utf8';

-- Deeply nested JSON.
SELECT * FROM cdp.ingest('{"type":"track","event":"Deep","userId":"u1","messageId":"deep","properties":'
                         || repeat('{"a":', 100) || '1' || repeat('}', 100) || '}',
                         received_at => '2026-11-20 10:06:00+00');
SELECT reason, detail FROM cdp.rejected_events WHERE message_id = 'deep';

-- Over 32 KB for one event: that event is rejected, its neighbour lands.
SELECT * FROM cdp.ingest('[{"type":"track","event":"Huge","userId":"u1","messageId":"huge","properties":{"blob":"'
                         || repeat('x', 33000) || '"}},'
                         || '{"type":"track","event":"Small","userId":"u1","messageId":"small","timestamp":"2026-11-20T10:02:00Z"}]',
                         received_at => '2026-11-20 10:07:00+00');
SELECT reason, message_id, detail, length(raw) FROM cdp.rejected_events WHERE message_id = 'huge';

-- Over the batch limit: the whole payload is rejected (and kept).
SET cdp.max_batch_bytes = '1kB';
SELECT * FROM cdp.ingest('[' || rtrim(repeat('{"type":"track","event":"E","userId":"u1"},', 40), ',') || ']');
SELECT reason, item_index, detail FROM cdp.rejected_events WHERE reason = 'size_violation' AND item_index IS NULL;
RESET cdp.max_batch_bytes;

-- Rejections by reason, as a dashboard would show them.
SELECT reason, count(*) FROM cdp.rejected_events GROUP BY reason ORDER BY reason;

-- Replay: once the limit is back at 500 kB, the oversized payload goes through (its 40
-- identical events carry no messageId, so they are one event sent 40 times); the item with
-- the unknown type is still bad and is recorded anew.
SELECT * FROM cdp.replay_rejected(ARRAY(SELECT rejected_id FROM cdp.rejected_events
                                         WHERE message_id = 'bad-type'
                                            OR (reason = 'size_violation' AND item_index IS NULL)));
SELECT reason, count(*) FROM cdp.rejected_events WHERE message_id = 'bad-type' OR item_index IS NULL GROUP BY reason ORDER BY reason;

-- A malformed call raises an error with SQLSTATE, message, detail and hint, and the session
-- stays usable after each one. (A helper shows all four parts of each error.)
CREATE FUNCTION pg_temp.error_of(statement text)
RETURNS TABLE (code text, message text, detail text, hint text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN NEXT;
END $$;
SELECT * FROM pg_temp.error_of($$SELECT cdp.ingest(NULL::text)$$) \gx
SELECT * FROM pg_temp.error_of($$SELECT cdp.ingest(NULL::jsonb)$$) \gx
SELECT * FROM pg_temp.error_of($$SELECT cdp.ingest('{}', workspace_id => NULL)$$) \gx
SELECT * FROM pg_temp.error_of($$SELECT cdp.ingest('{}', received_at => 'infinity')$$) \gx
SELECT * FROM pg_temp.error_of($$SELECT cdp.ingest(42)$$) \gx
-- Settings are checked when they are set.
SELECT * FROM pg_temp.error_of($$SET cdp.dedup_window = 'a fortnight'$$) \gx
SELECT * FROM pg_temp.error_of($$SET cdp.session_timeout = '-5 minutes'$$) \gx
SELECT * FROM pg_temp.error_of($$SET cdp.ip_policy = 'blur'$$) \gx
SELECT count(*) AS events_still_queryable FROM cdp.events;
SELECT * FROM cdp.ingest('{"type":"track","event":"After Errors","userId":"u1","messageId":"after-errors"}');

-- Rows written in bulk still obey the table's constraints; triggers and row-level security,
-- which bulk writing would bypass, are refused with a clear error rather than ignored.
ALTER TABLE cdp.events ADD CONSTRAINT no_test_events CHECK (event IS DISTINCT FROM 'Forbidden');
SELECT code, message FROM pg_temp.error_of($$SELECT cdp.ingest('{"type":"track","event":"Forbidden","userId":"u1"}', received_at => '2026-11-20 10:00:00+00')$$) \gx
ALTER TABLE cdp.events DROP CONSTRAINT no_test_events;
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER noop BEFORE INSERT ON cdp.events FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT * FROM pg_temp.error_of($$SELECT cdp.ingest('{"type":"track","event":"Triggered","userId":"u1"}')$$) \gx
DROP TRIGGER noop ON cdp.events;
SELECT count(*) AS forbidden_or_triggered FROM cdp.events WHERE event IN ('Forbidden', 'Triggered');

-- The raw text of a rejected event follows cdp.ip_policy too (truncate by default): it keeps
-- no more of the address than an accepted event would, and replaying it stores the same.
SELECT * FROM cdp.ingest('[{"type":"track","anonymousId":"r9","messageId":"ip-reject","context":{"ip":"198.51.100.23"}},
                           {"type":"track", "context": {"ip": "2001:db8:abcd:12::1"}, "messageId": "ip-reject-2"}]');
SELECT message_id, reason, raw FROM cdp.rejected_events WHERE message_id LIKE 'ip-reject%' ORDER BY message_id;

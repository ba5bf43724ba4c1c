-- Exact dedup on messageId: a retry never stores an event twice.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","userId":"d1","messageId":"order-77",
                           "timestamp":"2026-11-21T08:00:00Z"}', received_at => '2026-11-21 08:00:01+00');
-- The SDK retries the same request.
SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","userId":"d1","messageId":"order-77",
                           "timestamp":"2026-11-21T08:00:00Z"}', received_at => '2026-11-21 08:00:09+00');
-- Duplicates inside one payload count too; the first occurrence wins.
SELECT * FROM cdp.ingest('[{"type":"track","event":"First","userId":"d1","messageId":"twin","timestamp":"2026-11-21T08:01:00Z"},
                           {"type":"track","event":"Second","userId":"d1","messageId":"twin","timestamp":"2026-11-21T08:01:00Z"},
                           {"type":"track","event":"Other","userId":"d1","messageId":"order-77","timestamp":"2026-11-21T08:01:00Z"}]',
                         received_at => '2026-11-21 08:01:01+00');
SELECT event_id, event FROM cdp.events WHERE user_id = 'd1' ORDER BY event_id;

-- Without a messageId, identical bytes are the same event (a retried request).
SELECT * FROM cdp.ingest('{"type":"track","event":"No Id","userId":"d2"}', received_at => '2026-11-21 08:02:00+00');
SELECT * FROM cdp.ingest('{"type":"track","event":"No Id","userId":"d2"}', received_at => '2026-11-21 08:02:05+00');
SELECT count(*), min(event_id) LIKE 'generated:%' AS generated_id FROM cdp.events WHERE user_id = 'd2';

-- The window: past it, a messageId is forgotten and the event is accepted again.
SET cdp.dedup_window = '1 hour';
SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","userId":"d1","messageId":"order-77",
                           "timestamp":"2026-11-21T08:00:00Z"}', received_at => '2026-11-21 08:30:00+00');
SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","userId":"d1","messageId":"order-77",
                           "timestamp":"2026-11-21T09:30:00Z"}', received_at => '2026-11-21 09:30:00+00');
-- "infinity" remembers forever.
SET cdp.dedup_window = 'infinity';
SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","userId":"d1","messageId":"order-77",
                           "timestamp":"2026-11-21T08:00:00Z"}', received_at => '2030-01-01 00:00:00+00');
RESET cdp.dedup_window;
SELECT count(*) AS order_77_rows FROM cdp.events WHERE event_id = 'order-77';

-- Dedup is per workspace.
SELECT cdp.create_workspace('dedup-tenant') AS ws \gset
SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","userId":"d1","messageId":"order-77",
                           "timestamp":"2026-11-21T08:00:00Z"}', workspace_id => :ws, received_at => '2026-11-21 08:00:01+00');

-- cdp.tick() forgets messageIds older than the window.
SET cdp.dedup_window = '1 day';
SELECT count(*) > 0 AS remembered FROM cdp_internal.message_ids;
SELECT task, affected > 0 AS did_something FROM cdp.tick() WHERE task LIKE 'forget%';
SELECT count(*) AS remembered_after_tick FROM cdp_internal.message_ids;
RESET cdp.dedup_window;

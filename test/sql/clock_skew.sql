-- Clock skew: the device clock is wrong, the distance between its timestamp and sentAt is not.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- The phone's clock is an hour behind: it says the event happened at 11:00:00 and was sent at
-- 11:00:05; the server received it at 12:00:10. The event happened at 12:00:05.
SELECT * FROM cdp.ingest('{"type":"track","event":"Skewed","userId":"c1","messageId":"skew-1",
                           "timestamp":"2026-11-22T11:00:00Z","sentAt":"2026-11-22T11:00:05Z"}',
                         received_at => '2026-11-22 12:00:10+00');
-- No sentAt: the client's timestamp is taken as it is.
SELECT * FROM cdp.ingest('{"type":"track","event":"Plain","userId":"c1","messageId":"skew-2",
                           "timestamp":"2026-11-22T11:30:00+01:00"}', received_at => '2026-11-22 12:00:10+00');
-- An explicit originalTimestamp wins over timestamp as the client's clock.
SELECT * FROM cdp.ingest('{"type":"track","event":"Original","userId":"c1","messageId":"skew-3",
                           "originalTimestamp":"2026-11-22T11:59:00Z","timestamp":"2026-11-22T00:00:00Z",
                           "sentAt":"2026-11-22T12:00:00Z"}', received_at => '2026-11-22 12:00:30+00');
-- No time at all: the event happened when it was received.
SELECT * FROM cdp.ingest('{"type":"track","event":"Timeless","userId":"c1","messageId":"skew-4"}',
                         received_at => '2026-11-22 12:00:40+00');

SELECT event, "timestamp", original_timestamp, sent_at, received_at
FROM cdp.events WHERE user_id = 'c1' ORDER BY event_id;

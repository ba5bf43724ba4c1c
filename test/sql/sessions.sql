-- Sessionization: a visit ends after 30 minutes without events, or when a new campaign brings
-- the visitor back.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

SELECT * FROM cdp.ingest('[
  {"type":"page","anonymousId":"s-anna","messageId":"s1","timestamp":"2026-11-24T09:00:00Z",
   "context":{"page":{"url":"https://shop.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov","referrer":"https://mail.google.com/"}}},
  {"type":"page","anonymousId":"s-anna","messageId":"s2","timestamp":"2026-11-24T09:05:00Z",
   "context":{"page":{"url":"https://shop.example.com/p/eco-sneaker","referrer":"https://shop.example.com/"}}},
  {"type":"track","anonymousId":"s-anna","event":"Product Added","messageId":"s3","timestamp":"2026-11-24T09:07:00Z"},
  {"type":"page","anonymousId":"s-anna","messageId":"s4","timestamp":"2026-11-24T09:20:00Z",
   "context":{"page":{"url":"https://shop.example.com/cart"}}},
  {"type":"page","anonymousId":"s-anna","messageId":"s5","timestamp":"2026-11-24T11:00:00Z",
   "context":{"page":{"url":"https://shop.example.com/"}}},
  {"type":"page","anonymousId":"s-anna","messageId":"s6","timestamp":"2026-11-24T11:10:00Z",
   "context":{"page":{"url":"https://shop.example.com/sale?utm_source=facebook&utm_medium=paid-social&utm_campaign=retarget"}}},
  {"type":"page","anonymousId":"s-ben","messageId":"s7","timestamp":"2026-11-24T09:01:00Z",
   "context":{"page":{"url":"https://shop.example.com/help","referrer":"https://duckduckgo.com/"}}}
]', received_at => '2026-11-24 12:00:00+00');

SELECT anonymous_id, started_at, ended_at, duration, events, pages, landing_page, exit_page, page_sequence,
       referrer_medium, utm_source, utm_campaign, bounced
FROM cdp.sessions WHERE anonymous_id LIKE 's-%' ORDER BY anonymous_id, started_at;

-- In an app, the screen's name stands for the page.
SELECT anonymous_id, pages, landing_page, page_sequence FROM cdp.sessions WHERE anonymous_id = 'anon-sarah-tablet';

-- Sessions continue across batches: a later call extends the open visit...
SELECT * FROM cdp.ingest('{"type":"page","anonymousId":"s-ben","messageId":"s8","timestamp":"2026-11-24T09:25:00Z",
                           "context":{"page":{"url":"https://shop.example.com/help/warranty"}}}',
                         received_at => '2026-11-24 12:00:01+00');
SELECT anonymous_id, events, page_sequence FROM cdp.sessions WHERE anonymous_id = 's-ben';

-- ...and the timeout is a setting.
SET cdp.session_timeout = '5 minutes';
SELECT * FROM cdp.ingest('{"type":"page","anonymousId":"s-ben","messageId":"s9","timestamp":"2026-11-24T09:40:00Z",
                           "context":{"page":{"url":"https://shop.example.com/"}}}',
                         received_at => '2026-11-24 12:00:02+00');
RESET cdp.session_timeout;
SELECT anonymous_id, started_at, events FROM cdp.sessions WHERE anonymous_id = 's-ben' ORDER BY started_at;

-- Every event got a session, and a session id never spans two visitors.
SELECT count(*) FILTER (WHERE session_id IS NULL) AS without_session FROM cdp.events WHERE anonymous_id LIKE 's-%';
SELECT count(*) AS shared_sessions FROM (
  SELECT session_id FROM cdp.events GROUP BY session_id HAVING count(DISTINCT coalesce(anonymous_id, user_id)) > 1) s;

-- Attribution is the landing event's: a visit that starts without a referrer is direct, even
-- if its later pages carry the site's own pages as referrers.
SELECT * FROM cdp.ingest('[
  {"type":"page","anonymousId":"s-cleo","messageId":"c1","timestamp":"2026-11-24T15:00:00Z",
   "context":{"page":{"url":"https://shop.example.com/"}}},
  {"type":"page","anonymousId":"s-cleo","messageId":"c2","timestamp":"2026-11-24T15:01:00Z",
   "context":{"page":{"url":"https://shop.example.com/p/lamp","referrer":"https://shop.example.com/"}}}
]', received_at => '2026-11-24 15:02:00+00');
SELECT anonymous_id, pages, coalesce(referrer_medium, 'direct') AS came_from FROM cdp.sessions WHERE anonymous_id = 's-cleo';

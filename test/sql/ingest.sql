-- The first story: a shop sends its web and app events into PostgreSQL, and an analyst asks
-- what happened.
CREATE EXTENSION cdp;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- One page view from analytics.js: the URL carries a campaign, the visitor came from Google.
SELECT * FROM cdp.ingest($${
  "type": "page", "messageId": "ajs-1", "anonymousId": "anon-sarah-phone",
  "name": "Headphones", "timestamp": "2026-11-20T19:00:00Z",
  "properties": {"title": "Noise-cancelling headphones"},
  "context": {
    "page": {"url": "https://shop.example.com/c/headphones?utm_source=google&utm_medium=cpc&utm_campaign=winter+audio",
             "referrer": "https://www.google.com/search?q=headphones"},
    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "ip": "203.0.113.77", "locale": "en-GB"}
}$$, received_at => '2026-11-20 19:00:01+00');

-- A batch envelope from a server library: its context and integrations apply to every item,
-- unless an item says otherwise.
SELECT * FROM cdp.ingest($${
  "batch": [
    {"type": "track", "messageId": "srv-1", "userId": "sarah-42", "anonymousId": "anon-sarah-phone",
     "event": "Product Added", "properties": {"sku": "WH-1000", "price": 279.99, "quantity": 1},
     "timestamp": "2026-11-20T19:02:00Z"},
    {"type": "identify", "messageId": "srv-2", "userId": "sarah-42",
     "traits": {"email": "sarah@example.com", "plan": "premium"}, "timestamp": "2026-11-20T19:03:00Z",
     "integrations": {"Salesforce": true}},
    {"type": "screen", "messageId": "app-1", "anonymousId": "anon-sarah-tablet", "name": "Cart",
     "timestamp": "2026-11-20T20:00:00Z",
     "context": {"device": {"type": "ios"}, "os": {"name": "iOS", "version": "17.1"}}},
    {"type": "group", "messageId": "srv-3", "userId": "sarah-42", "groupId": "acme",
     "traits": {"name": "Acme Inc"}, "timestamp": "2026-11-20T19:04:00Z"},
    {"type": "alias", "messageId": "srv-4", "userId": "sarah-42", "previousId": "anon-sarah-phone",
     "timestamp": "2026-11-20T19:05:00Z"}
  ],
  "context": {"library": {"name": "analytics-node", "version": "2.1.0"}},
  "integrations": {"All": true}
}$$, received_at => '2026-11-20 20:00:05+00');

-- What landed, in typed columns.
SELECT type, coalesce(event, name) AS what, anonymous_id, user_id, group_id, previous_id, "timestamp"
FROM cdp.events ORDER BY "timestamp";

-- The page view: campaign from the URL, referrer classified, device from the user agent,
-- the IP truncated by the default policy.
SELECT page_url, page_path, page_title, referrer_host, referrer_medium, utm_source, utm_medium, utm_campaign,
       device_type, os, os_version, browser, browser_version, ip, locale
FROM cdp.events WHERE event_id = 'ajs-1' \gx

-- Nothing the client sent is lost: properties, traits and context as jsonb, every other
-- top-level key (integrations, merged with the batch's) in extra.
SELECT event_id, properties, traits, context -> 'library' AS library, extra
FROM cdp.events WHERE event_id IN ('srv-1', 'srv-2') ORDER BY event_id;

-- The app's screen view has no user agent: device and OS come from the SDK's context.
SELECT device_type, os, os_version, browser FROM cdp.events WHERE event_id = 'app-1';

-- Numbers survive exactly as numbers.
SELECT properties -> 'price' AS price, jsonb_typeof(properties -> 'quantity') AS quantity_type
FROM cdp.events WHERE event_id = 'srv-1';

-- The jsonb overload, for callers that already hold jsonb.
SELECT * FROM cdp.ingest('{"type": "track", "event": "Order Completed", "userId": "sarah-42",
                          "messageId": "srv-5", "properties": {"total": 279.99},
                          "timestamp": "2026-11-20T21:00:00Z"}'::jsonb,
                         received_at => '2026-11-20 21:00:00+00');
SELECT event, properties FROM cdp.events WHERE event_id = 'srv-5';

-- A JSON array of events works as well.
SELECT * FROM cdp.ingest('[{"type":"track","event":"A","userId":"u-array","messageId":"arr-1"},
                           {"type":"track","event":"B","userId":"u-array","messageId":"arr-2"}]');
SELECT count(*) FROM cdp.events WHERE user_id = 'u-array';

-- received_at defaults to the server clock.
SELECT received_at BETWEEN now() - interval '1 minute' AND clock_timestamp() AS stamped_now
FROM cdp.events WHERE event_id = 'arr-1';

-- Workspaces keep tenants apart; an unknown workspace is refused.
SELECT cdp.create_workspace('second-brand') AS workspace;
SELECT * FROM cdp.ingest('{"type":"track","event":"A","userId":"u-ws","messageId":"arr-1"}', workspace_id => 2);
SELECT workspace_id, count(*) FROM cdp.events GROUP BY 1 ORDER BY 1;
SELECT * FROM cdp.ingest('{"type":"track","event":"A","userId":"u","messageId":"x"}', workspace_id => 99);

-- Events per type, the first thing an analyst asks.
SELECT type, count(*) FROM cdp.events GROUP BY type ORDER BY type;

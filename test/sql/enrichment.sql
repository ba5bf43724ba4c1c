-- Enrichment: device, OS and browser from the user agent (uap-core rules), referrer medium,
-- and the IP policy.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

SELECT * FROM cdp.ingest('[
  {"type":"page","anonymousId":"e1","messageId":"ua-chrome","context":{"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}},
  {"type":"page","anonymousId":"e1","messageId":"ua-android","context":{"userAgent":"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36"}},
  {"type":"page","anonymousId":"e1","messageId":"ua-ipad","context":{"userAgent":"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"}},
  {"type":"page","anonymousId":"e1","messageId":"ua-bot","context":{"userAgent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}},
  {"type":"page","anonymousId":"e1","messageId":"ua-junk","context":{"userAgent":"???"}}
]', received_at => '2026-11-25 10:00:00+00');
SELECT event_id, device_type, os, os_version, browser, browser_version FROM cdp.events
WHERE event_id LIKE 'ua-%' ORDER BY event_id;

-- Referrers: search, social, e-mail, internal (the page's own site, or a configured domain).
SET cdp.internal_domains = 'checkout.example-pay.com';
SELECT * FROM cdp.ingest('[
  {"type":"page","anonymousId":"e2","messageId":"ref-search","context":{"page":{"url":"https://shop.example.com/","referrer":"https://www.google.co.uk/"}}},
  {"type":"page","anonymousId":"e2","messageId":"ref-social","context":{"page":{"url":"https://shop.example.com/","referrer":"https://t.co/abc"}}},
  {"type":"page","anonymousId":"e2","messageId":"ref-email","context":{"page":{"url":"https://shop.example.com/","referrer":"https://outlook.live.com/mail/0/"}}},
  {"type":"page","anonymousId":"e2","messageId":"ref-internal","context":{"page":{"url":"https://shop.example.com/b","referrer":"https://shop.example.com/a"}}},
  {"type":"page","anonymousId":"e2","messageId":"ref-configured","context":{"page":{"url":"https://shop.example.com/thanks","referrer":"https://checkout.example-pay.com/done"}}},
  {"type":"page","anonymousId":"e2","messageId":"ref-other","context":{"page":{"url":"https://shop.example.com/","referrer":"https://news.ycombinator.com/item?id=1"}}},
  {"type":"page","anonymousId":"e2","messageId":"ref-direct","context":{"page":{"url":"https://shop.example.com/"}}}
]', received_at => '2026-11-25 10:00:00+00');
RESET cdp.internal_domains;
SELECT event_id, referrer_host, referrer_medium FROM cdp.events WHERE event_id LIKE 'ref-%' ORDER BY event_id;

-- UTM parameters: context.campaign wins over the URL's query string.
SELECT * FROM cdp.ingest('{"type":"track","event":"Signed Up","anonymousId":"e3","messageId":"utm-ctx",
  "context":{"campaign":{"source":"partner","medium":"affiliate","name":"launch","term":"crm","content":"banner-b"},
             "page":{"url":"https://shop.example.com/?utm_source=ignored"}}}', received_at => '2026-11-25 10:00:00+00');
SELECT utm_source, utm_medium, utm_campaign, utm_term, utm_content FROM cdp.events WHERE event_id = 'utm-ctx';

-- The IP policy: full, truncate (the default) or drop; what is not an address is dropped.
SET cdp.ip_policy = 'full';
SELECT * FROM cdp.ingest('{"type":"track","event":"E","anonymousId":"e4","messageId":"ip-full","context":{"ip":"198.51.100.23"}}', received_at => '2026-11-25 10:00:00+00');
SET cdp.ip_policy = 'drop';
SELECT * FROM cdp.ingest('{"type":"track","event":"E","anonymousId":"e4","messageId":"ip-drop","context":{"ip":"198.51.100.23"}}', received_at => '2026-11-25 10:00:00+00');
RESET cdp.ip_policy;
SELECT * FROM cdp.ingest('[{"type":"track","event":"E","anonymousId":"e4","messageId":"ip-v6","context":{"ip":"2001:db8:abcd:12::1"}},
                           {"type":"track","event":"E","anonymousId":"e4","messageId":"ip-junk","context":{"ip":"localhost; DROP TABLE x"}}]',
                         received_at => '2026-11-25 10:00:00+00');
SELECT event_id, ip, context ->> 'ip' AS context_ip FROM cdp.events WHERE event_id LIKE 'ip-%' ORDER BY event_id;

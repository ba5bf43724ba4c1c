// Real SDKs against cdp-collector (started by collector.sh, which sets CDP_BASE, CDP_KEY and
// CDP_DB): @segment/analytics-node and @rudderstack/rudder-sdk-node (gzip on, its default) send
// as they would to Segment or RudderStack; PostgreSQL is then asked what landed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { Analytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';

const BASE = process.env.CDP_BASE;
const KEY = process.env.CDP_KEY;
const DB = process.env.CDP_DB;
const sql = (q) => execFileSync('psql', [DB, '-qtAX', '-F', '|', '-c', q], { encoding: 'utf8' }).trim();
const UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36';

test('analytics-node: events land once, with identity, page, campaign and user agent', async () => {
  const analytics = new Analytics({ writeKey: KEY, host: BASE, flushAt: 10, flushInterval: 200 });
  const context = {
    page: { url: 'https://shop.example.com/p/wh-1000?utm_source=news&utm_medium=email&utm_campaign=black-friday',
            path: '/p/wh-1000', referrer: 'https://www.google.com/' },
    userAgent: UA,
  };
  analytics.identify({ userId: 'node-user', anonymousId: 'node-anon', traits: { email: 'Node.User@Example.com' }, context });
  analytics.page({ anonymousId: 'node-anon', name: 'Product', properties: { path: '/p/wh-1000' }, context });
  for (let i = 0; i < 3; i++) analytics.track({ userId: 'node-user', event: 'Product Viewed', properties: { i }, context });
  await analytics.closeAndFlush();
  assert.equal(sql("SELECT count(*) FROM cdp.events WHERE user_id = 'node-user' OR anonymous_id = 'node-anon'"), '5');
  assert.equal(sql("SELECT count(DISTINCT event_id) FROM cdp.events WHERE user_id = 'node-user' OR anonymous_id = 'node-anon'"), '5');
  assert.equal(sql("SELECT DISTINCT utm_campaign || '|' || utm_medium || '|' || referrer_medium || '|' || browser || '|' || os" +
                   " FROM cdp.events WHERE user_id = 'node-user' AND type = 'track'"), 'black-friday|email|search|Chrome|Mac OS X');
  assert.equal(sql("SELECT page_path FROM cdp.events WHERE type = 'page' AND anonymous_id = 'node-anon'"), '/p/wh-1000');
  // One person: the identify linked the anonymous page view to the user.
  assert.equal(sql("SELECT count(DISTINCT current_profile_id) FROM cdp.events_by_profile WHERE user_id = 'node-user' OR anonymous_id = 'node-anon'"), '1');
  assert.equal(sql("SELECT cdp.resolve('email', 'node.user@example.com') = cdp.resolve('anonymous_id', 'node-anon')"), 't');
  assert.match(sql("SELECT DISTINCT context -> 'library' ->> 'name' FROM cdp.events WHERE user_id = 'node-user'"), /analytics-node/);
});

test('rudder-sdk-node: gzip on, its defaults; events land once', async () => {
  const client = new RudderAnalytics(KEY, { dataPlaneUrl: BASE, flushAt: 5, flushInterval: 200, logLevel: 'error' });
  for (let i = 0; i < 4; i++) client.track({ userId: 'rudder-user', event: 'Order Completed', properties: { total: 10 + i } });
  client.identify({ userId: 'rudder-user', traits: { plan: 'gold' } });
  await new Promise((resolve, reject) => client.flush((err) => (err ? reject(err) : resolve())));
  assert.equal(sql("SELECT count(*) || '|' || count(DISTINCT event_id) FROM cdp.events WHERE user_id = 'rudder-user'"), '5|5');
  assert.equal(sql("SELECT sum((properties ->> 'total')::int) FROM cdp.events WHERE user_id = 'rudder-user' AND type = 'track'"), '46');
});

test('a 503 is retried by the SDK and stores nothing twice', async () => {
  // A proxy in front of the collector that answers the first request 503, as the collector
  // does while the database is down, then passes everything through.
  let first = true;
  const proxy = http.createServer((req, res) => {
    if (first) {
      first = false;
      req.resume();
      res.writeHead(503, { 'Retry-After': '0', 'Content-Type': 'application/json' });
      res.end('{"error":"not stored"}');
      return;
    }
    const target = new URL(req.url, BASE);
    const up = http.request(target, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const host = `http://127.0.0.1:${proxy.address().port}`;
  const analytics = new Analytics({ writeKey: KEY, host, flushAt: 3, flushInterval: 100, maxRetries: 5 });
  for (let i = 0; i < 3; i++) analytics.track({ userId: 'retry-user', event: 'Retried', properties: { i } });
  await analytics.closeAndFlush();
  proxy.close();
  assert.equal(first, false, 'the proxy refused a first request');
  assert.equal(sql("SELECT count(*) || '|' || count(DISTINCT event_id) FROM cdp.events WHERE user_id = 'retry-user'"), '3|3');
});

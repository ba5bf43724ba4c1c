// The browser SDK, @segment/analytics-next, in a real page on localhost driven in Debian's
// headless Chromium (playwright-core), with cdnSettings given so it needs no CDN: its events go
// to cdp-collector (CDP_BASE) from the page's origin, through CORS, as text/plain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = process.env.CDP_BASE;
const KEY = process.env.CDP_KEY;
const DB = process.env.CDP_DB;
const PAGE_PORT = Number(process.env.CDP_PAGE_PORT);
const sql = (q) => execFileSync('psql', [DB, '-qtAX', '-F', '|', '-c', q], { encoding: 'utf8' }).trim();
const here = path.dirname(fileURLToPath(import.meta.url));
const umd = path.join(here, 'node_modules/@segment/analytics-next/dist/umd');

const page = `<!doctype html><html><head><title>Shop</title>
<script src="/umd/index.js"></script></head><body><h1>WH-1000</h1><script>
const { AnalyticsBrowser } = window.AnalyticsNext;
const api = new URL(${JSON.stringify(BASE)});
const analytics = AnalyticsBrowser.load({
  writeKey: ${JSON.stringify(KEY)},
  cdnSettings: { integrations: { 'Segment.io': { apiKey: ${JSON.stringify(KEY)}, apiHost: api.host + '/v1', protocol: 'http' } } },
});
window.sent = (async () => {
  await analytics.identify('browser-user', { email: 'Browser.User@Example.com' });
  await analytics.page('Product', { category: 'headphones' });
  await analytics.track('Product Added', { sku: 'WH-1000', price: 349 });
  return true;
})();
</script></body></html>`;

test('analytics-next in headless Chromium: identify, page and track land once, with page, campaign and browser', async () => {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname.startsWith('/umd/')) {
      const file = path.join(umd, path.basename(url.pathname));
      if (!fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'Content-Type': 'application/javascript' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(page);
  });
  await new Promise((r) => server.listen(PAGE_PORT, '127.0.0.1', r));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  try {
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${PAGE_PORT}/p/wh-1000?utm_source=newsletter&utm_medium=email&utm_campaign=winter-audio`);
    assert.equal(await tab.evaluate(() => window.sent), true);
    // The SDK sends after resolving; wait until the three calls are stored.
    let n = '0';
    for (let i = 0; i < 100 && n !== '3'; i++) {
      n = sql("SELECT count(*) FROM cdp.events WHERE user_id = 'browser-user'");
      if (n !== '3') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(n, '3');
    assert.equal(sql("SELECT string_agg(type, ',' ORDER BY type) FROM cdp.events WHERE user_id = 'browser-user'"), 'identify,page,track');
    assert.equal(sql("SELECT count(DISTINCT event_id) FROM cdp.events WHERE user_id = 'browser-user'"), '3');
    const row = sql("SELECT page_path || '|' || utm_campaign || '|' || utm_medium || '|' || coalesce(browser, '-') || '|' || device_type" +
                    " FROM cdp.events WHERE user_id = 'browser-user' AND type = 'track'");
    assert.match(row, /^\/p\/wh-1000\|winter-audio\|email\|[^|]*Chrome[^|]*\|desktop$/);
    assert.match(sql("SELECT context -> 'library' ->> 'name' FROM cdp.events WHERE user_id = 'browser-user' AND type = 'page'"),
                 /analytics\.js/);
    assert.equal(sql("SELECT cdp.resolve('email', 'browser.user@example.com') = cdp.resolve('user_id', 'browser-user')"), 't');
  } finally {
    await browser.close();
    server.close();
  }
});

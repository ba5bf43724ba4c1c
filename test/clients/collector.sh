#!/usr/bin/env bash
# The collector over real HTTP (curl) against a throwaway cluster: every endpoint form the SDKs
# use, every way of giving the write key, gzip however labelled, CORS, the status codes
# (400, 401, 413, 503 with Retry-After), dedup of retries, a database that goes away and comes
# back (a 200 always means stored), and a clean shutdown. Exits non-zero on the first failure.
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
cd "$REPO_ROOT"

# A cluster of its own, deleted first: never the CDP_CLUSTER_DIR a developer has exported for
# the demo or the benchmarks (CDP_TEST_CLUSTER_DIR and CDP_TEST_PORT move it).
export CDP_CLUSTER_DIR=${CDP_TEST_CLUSTER_DIR:-$REPO_ROOT/build/test-output/collector-cluster}
export CDP_PORT=${CDP_TEST_PORT:-54339}
HTTP_PORT=${CDP_COLLECTOR_PORT:-18088}
BASE="http://127.0.0.1:$HTTP_PORT"
rm -rf "$CDP_CLUSTER_DIR"
URL=$(./scripts/cluster.sh start)
DB="${URL/dbname=postgres/dbname=collector_test}"
psql "$URL" -qX -c "CREATE DATABASE collector_test"
psql "$DB" -qX -c "CREATE EXTENSION cdp"
KEY=$(psql "$DB" -qtAX -c "SELECT cdp.create_write_key('website')")
q() { psql "$DB" -qtAX -c "$1"; }

LOG="$CDP_CLUSTER_DIR/collector.log"
PAGE_PORT=${CDP_PAGE_PORT:-18089}
./build/cdp-collector --db "$DB" --listen "127.0.0.1:$HTTP_PORT" --cors-origin http://shop.localhost \
  --cors-origin "http://127.0.0.1:$PAGE_PORT" >"$LOG" 2>&1 &
COLLECTOR=$!
cleanup() { kill "$COLLECTOR" 2>/dev/null || true; ./scripts/cluster.sh stop; }
trap cleanup EXIT
for _ in $(seq 50); do curl -s "$BASE/health" >/dev/null && break; sleep 0.1; done

fail() { echo "collector test FAILED: $*" >&2; echo "--- collector log" >&2; cat "$LOG" >&2; exit 1; }
expect_status() {  # expected, then curl arguments
  local want=$1; shift
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  [ "$got" = "$want" ] || fail "expected HTTP $want, got $got for: $*"
}
expect_sql() {  # expected, query
  local got
  got=$(q "$2")
  [ "$got" = "$1" ] || fail "expected '$1' from $2, got '$got'"
}

# analytics-node style: /v1/batch, Basic auth, JSON.
expect_status 200 -u "$KEY:" -H 'Content-Type: application/json' "$BASE/v1/batch" -d '{"batch":[
  {"type":"track","event":"Product Viewed","userId":"u1","messageId":"m1","properties":{"sku":"A"}},
  {"type":"page","name":"Home","anonymousId":"a1","messageId":"m2","properties":{"url":"https://shop.localhost/?utm_campaign=winter"}}],
  "context":{"library":{"name":"analytics-node"}}}'
expect_sql 2 "SELECT count(*) FROM cdp.events"
expect_sql "127.0.0.0|analytics-node" "SELECT DISTINCT host(ip) || '|' || (context -> 'library' ->> 'name') FROM cdp.events"
expect_sql winter "SELECT utm_campaign FROM cdp.events WHERE event_id = 'm2'"
# The browser's short forms: writeKey in the body, text/plain.
expect_status 200 -H 'Content-Type: text/plain' "$BASE/v1/t" -d "{\"writeKey\":\"$KEY\",\"event\":\"Signed Up\",\"anonymousId\":\"a2\",\"messageId\":\"m3\"}"
expect_sql "track|" "SELECT type || '|' || coalesce(extra ->> 'writeKey', '') FROM cdp.events WHERE event_id = 'm3'"
# The key as a query parameter, and every single-call path.
for p in identify i; do
  expect_status 200 "$BASE/v1/$p?writeKey=$KEY" -d "{\"userId\":\"u-$p\",\"traits\":{\"plan\":\"pro\"},\"messageId\":\"id-$p\"}"
done
expect_sql 2 "SELECT count(*) FROM cdp.events WHERE type = 'identify'"
# RudderStack: gzip, labelled as a form; and gzip with Content-Encoding.
printf '%s' '{"batch":[{"type":"track","event":"Gzipped","userId":"u3","messageId":"m4"}]}' | gzip -c > "$CDP_CLUSTER_DIR/body.gz"
expect_status 200 -u "$KEY:" -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$CDP_CLUSTER_DIR/body.gz" "$BASE/beacon/v1/batch"
printf '%s' '{"batch":[{"type":"track","event":"Gzipped","userId":"u3","messageId":"m5"}]}' | gzip -c > "$CDP_CLUSTER_DIR/body2.gz"
expect_status 200 -u "$KEY:" -H 'Content-Encoding: gzip' -H 'Content-Type: application/json' --data-binary @"$CDP_CLUSTER_DIR/body2.gz" "$BASE/v1/batch"
expect_sql 2 "SELECT count(*) FROM cdp.events WHERE event = 'Gzipped'"
# A retry of a stored event is not stored twice; a bad item in a good batch is kept as rejected.
expect_status 200 -u "$KEY:" "$BASE/v1/batch" -d '{"batch":[{"type":"track","event":"Product Viewed","userId":"u1","messageId":"m1"},
  {"type":"track","userId":"u1","messageId":"m6"}]}'
expect_sql 1 "SELECT count(*) FROM cdp.events WHERE event_id = 'm1'"
expect_sql missing_field "SELECT reason FROM cdp.rejected_events WHERE message_id = 'm6'"
# Refusals.
expect_status 401 "$BASE/v1/batch" -d '{"batch":[]}'
expect_status 401 -u "wk_not_a_key:" "$BASE/v1/batch" -d '{"batch":[]}'
expect_status 400 -u "$KEY:" "$BASE/v1/batch" -d '{"batch":[{"type":'
expect_status 400 -u "$KEY:" "$BASE/v1/batch" -d '{"events":[]}'
head -c 600000 /dev/zero | tr '\0' 'x' | sed 's/^/{"batch":[{"type":"track","event":"x","userId":"u","p":"/; s/$/"}]}/' > "$CDP_CLUSTER_DIR/big.json"
expect_status 413 -u "$KEY:" --data-binary @"$CDP_CLUSTER_DIR/big.json" "$BASE/v1/batch"
expect_status 404 -u "$KEY:" "$BASE/v1/nothing" -d '{}'
# CORS preflight for the shop's origin, not for another.
acao=$(curl -s -o /dev/null -D - -X OPTIONS -H 'Origin: http://shop.localhost' -H 'Access-Control-Request-Method: POST' "$BASE/v1/t" | tr -d '\r' | sed -n 's/^Access-Control-Allow-Origin: //Ip')
[ "$acao" = "http://shop.localhost" ] || fail "CORS preflight answered '$acao'"
acao=$(curl -s -o /dev/null -D - -X OPTIONS -H 'Origin: http://evil.localhost' "$BASE/v1/t" | tr -d '\r' | sed -n 's/^Access-Control-Allow-Origin: //Ip')
[ -z "$acao" ] || fail "CORS allowed another origin"
expect_status 200 "$BASE/health"

# The database goes away: requests are answered 503 with Retry-After, never 200; when it is
# back, the retried events land once, and every event that got a 200 is stored.
./scripts/cluster.sh stop
headers=$(curl -s -o /dev/null -D - -u "$KEY:" "$BASE/v1/batch" -d '{"batch":[{"type":"track","event":"During Outage","userId":"u9","messageId":"m9"}]}' | tr -d '\r')
grep -q '^HTTP/1.1 503' <<<"$headers" || fail "expected 503 while the database is down: $headers"
grep -qi '^Retry-After: ' <<<"$headers" || fail "no Retry-After on 503"
expect_status 503 "$BASE/health"
./scripts/cluster.sh start >/dev/null
for _ in $(seq 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "$KEY:" "$BASE/v1/batch" -d '{"batch":[{"type":"track","event":"During Outage","userId":"u9","messageId":"m9"}]}')
  [ "$code" = 200 ] && break
  sleep 0.2
done
[ "$code" = 200 ] || fail "the collector did not recover: $code"
expect_sql 1 "SELECT count(*) FROM cdp.events WHERE event_id = 'm9'"

# The database dies mid-load (immediate stop: no clean shutdown): requests in flight get 503
# (or fail), never a 200 for events that were not committed. Every request answered 200 has all
# its events stored.
: > "$CDP_CLUSTER_DIR/outage.txt"
for i in $(seq 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "$KEY:" "$BASE/v1/batch" \
    -d "{\"batch\":[{\"type\":\"track\",\"event\":\"Mid Load\",\"userId\":\"k$i\",\"messageId\":\"k$i-a\"},{\"type\":\"track\",\"event\":\"Mid Load\",\"userId\":\"k$i\",\"messageId\":\"k$i-b\"}]}" || echo 000)
  echo "$i $code" >> "$CDP_CLUSTER_DIR/outage.txt"
done &
LOADER=$!
sleep 0.3
as_pg "$PG_BINDIR/pg_ctl" -D "$CDP_CLUSTER_DIR/data" -m immediate -w stop >/dev/null
sleep 0.5
./scripts/cluster.sh start >/dev/null
wait "$LOADER"
ok=$(awk '$2 == 200' "$CDP_CLUSTER_DIR/outage.txt" | wc -l)
refused=$(awk '$2 != 200' "$CDP_CLUSTER_DIR/outage.txt" | wc -l)
[ "$refused" -gt 0 ] || fail "the outage refused no request (it came too late to test anything)"
for i in $(awk '$2 == 200 {print $1}' "$CDP_CLUSTER_DIR/outage.txt"); do echo "k$i-a"; echo "k$i-b"; done > "$CDP_CLUSTER_DIR/acked.txt"
missing=$(q "SELECT count(*) FROM unnest(string_to_array('$(tr '\n' ',' < "$CDP_CLUSTER_DIR/acked.txt" | sed 's/,$//')', ',')) AS a(id)
             WHERE NOT EXISTS (SELECT FROM cdp.events e WHERE e.event_id = a.id)")
[ "$missing" = 0 ] || fail "$missing events acknowledged with 200 are not stored"
echo "collector: outage mid-load: $ok requests answered 200 (all stored), $refused refused"

# Many concurrent requests: all answered 200, all stored once.
for i in $(seq 40); do
  curl -s -o /dev/null -w '%{http_code}\n' -u "$KEY:" "$BASE/v1/batch" \
    -d "{\"batch\":[{\"type\":\"track\",\"event\":\"Load\",\"userId\":\"c$i\",\"messageId\":\"l$i-1\"},{\"type\":\"track\",\"event\":\"Load\",\"userId\":\"c$i\",\"messageId\":\"l$i-2\"}]}" &
done > "$CDP_CLUSTER_DIR/codes.txt"
wait $(jobs -p | grep -v "^$COLLECTOR\$") 2>/dev/null || true
sleep 0.5
[ "$(grep -c '^200$' "$CDP_CLUSTER_DIR/codes.txt")" = 40 ] || fail "not all concurrent requests got 200: $(sort "$CDP_CLUSTER_DIR/codes.txt" | uniq -c)"
expect_sql 80 "SELECT count(*) FROM cdp.events WHERE event = 'Load'"

# Real SDKs (test/clients/sdk.test.mjs; npm packages pinned in package-lock.json).
(cd test/clients && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || npm ci --no-audit --no-fund)
CDP_BASE="$BASE" CDP_KEY="$KEY" CDP_DB="$DB" CDP_PAGE_PORT="$PAGE_PORT" \
  node --test test/clients/sdk.test.mjs test/clients/browser.test.mjs || fail "the SDK tests failed"

# A clean stop.
kill -TERM "$COLLECTOR"
wait "$COLLECTOR" || fail "the collector did not exit cleanly"
grep -q '"msg":"stopped"' "$LOG" || fail "no stop line in the log"
echo "collector: all checks passed"

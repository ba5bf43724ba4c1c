#!/usr/bin/env bash
# The collector benchmark of ../shared BENCHMARKS.md: events/s from HTTP to committed rows, a load
# generator on loopback (32 connections, batches of 50), against COPY of the same events into a
# jsonb table in the same run; request latency p50/p99.
#   bench/collector.sh DB EVENTS_FILE
set -euo pipefail
DB=$1
DATA=$2
cd "$(dirname "$0")/.."
q() { psql "$DB" -qtAX -v ON_ERROR_STOP=1 "$@"; }
EVENTS=$(grep -c . "$DATA")
PORT=${CDP_COLLECTOR_BENCH_PORT:-18098}

q -c "DROP TABLE IF EXISTS bench_copy" -c "CREATE TABLE bench_copy (doc jsonb)" >/dev/null
copy_s=$(q <<SQL | tail -1
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\copy bench_copy FROM '$DATA' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
)
q -c "DROP TABLE bench_copy" >/dev/null

q -c "TRUNCATE cdp.events, cdp.rejected_events, cdp_internal.message_ids, cdp_internal.session_state, cdp.identifiers,
      cdp.identity_edges, cdp.identity_changes, cdp.profiles, cdp_internal.profile_state, cdp.segment_members,
      cdp.segment_changes, cdp_internal.trigger_state" >/dev/null
KEY=$(q -c "SELECT cdp.create_write_key('bench')")
./build/cdp-collector --db "$DB" --listen "127.0.0.1:$PORT" 2>/dev/null &
COLLECTOR=$!
trap 'kill $COLLECTOR 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
read -r secs p50 p99 retries failures < <(./build/cdp_bench_collector --port "$PORT" --key "$KEY" --file "$DATA" \
  --connections 32 --batch 50 2>/dev/null)
kill -TERM $COLLECTOR; wait $COLLECTOR 2>/dev/null || true
stored=$(q -c "SELECT count(*) FROM cdp.events")
rejected=$(q -c "SELECT count(*) FROM cdp.rejected_events")
python3 - "$EVENTS" "$secs" "$copy_s" "$p50" "$p99" "$stored" "$rejected" "$retries" "$failures" <<'PY'
import sys
events, secs, copy_s, p50, p99, stored, rejected, retries, failures = sys.argv[1:]
events = int(events); ours = events / float(secs); base = events / float(copy_s)
print(f"collector-http  ours={ours:.0f} events/s  baseline={base:.0f} rows/s (COPY jsonb)  ratio={ours / base:.2f}  "
      f"[{events} events, 32 connections, batches of 50, identity and profiles on; latency p50 {p50} ms, p99 {p99} ms; "
      f"stored {stored}, rejected {rejected}, retried {retries}, failed {failures}]")
PY

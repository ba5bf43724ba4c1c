#!/usr/bin/env bash
# The collector benchmark of ../shared BENCHMARKS.md: events/s from HTTP to committed rows, a load
# generator on loopback (32 connections, batches of 50), against COPY of the same events into a
# jsonb table in the same run; request latency p50/p99. Two lines: the collector in front of the
# events-only ingest (what the collector adds), and in front of the full pipeline.
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

COLLECTOR=
LOG=$(mktemp)
trap 'rm -f "$LOG"; [ -z "$COLLECTOR" ] || kill $COLLECTOR 2>/dev/null || true' EXIT
# One load through the collector into a database session with `settings` (libpq options); prints
# the line for `label`.
load() {
  local label=$1 settings=$2
  q -c "TRUNCATE cdp.events, cdp.rejected_events, cdp_internal.message_ids, cdp_internal.session_state, cdp.identifiers,
        cdp_internal.identity_edges, cdp.identity_changes, cdp.profiles, cdp_internal.profile_state, cdp.segment_members,
        cdp.segment_changes, cdp_internal.trigger_state" >/dev/null
  local key secs p50 p99 retries failures stored rejected
  key=$(q -c "SELECT cdp.create_write_key('bench')")
  ./build/cdp-collector --db "$DB options='$settings'" --listen "127.0.0.1:$PORT" 2>/dev/null &
  COLLECTOR=$!
  for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  read -r secs p50 p99 retries failures < <(./build/cdp_bench_collector --port "$PORT" --key "$key" --file "$DATA" \
    --connections 32 --batch 50 2>"$LOG")
  kill -TERM $COLLECTOR; wait $COLLECTOR 2>/dev/null || true
  [ "$failures" = 0 ] || grep -v ' events in ' "$LOG" | sort | uniq -c >&2  # why requests failed
  stored=$(q -c "SELECT count(*) FROM cdp.events")
  rejected=$(q -c "SELECT count(*) FROM cdp.rejected_events")
  python3 - "$label" "$EVENTS" "$secs" "$copy_s" "$p50" "$p99" "$stored" "$rejected" "$retries" "$failures" <<'PY'
import sys
label, events, secs, copy_s, p50, p99, stored, rejected, retries, failures = sys.argv[1:]
events = int(events); ours = events / float(secs); base = events / float(copy_s)
print(f"{label}  ours={ours:.0f} events/s  baseline={base:.0f} rows/s (COPY jsonb)  ratio={ours / base:.2f}  "
      f"[{events} events, 32 connections, batches of 50; latency p50 {p50} ms, p99 {p99} ms; "
      f"stored {stored}, rejected {rejected}, retried {retries}, failed {failures}]")
PY
}
# The ingest of the events-only line of BENCHMARKS.md (parse, validate, dedup, enrich, store):
# what the collector adds to it.
load collector-http "-c cdp.stitch_identities=off"
# The full pipeline, as a new workspace has it: identity stitching and profile records too.
load collector-http-full-pipeline ""

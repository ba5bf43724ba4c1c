#!/usr/bin/env bash
# The segment benchmarks of ../shared BENCHMARKS.md:
#  1. segment membership after one event: a realtime segment over 1M profiles, kept by ingest,
#     against REFRESH MATERIALIZED VIEW of the same audience (and the event-to-feed latency of
#     single-event ingest calls, p50 and p99);
#  2. ingest throughput (identity and profiles on) with 0, 1 and 10 realtime segments.
#   bench/segments.sh DB EVENTS_FILE [latency]     (latency: the first only)
set -euo pipefail
DB=$1
DATA=$2
cd "$(dirname "$0")/.."
q() { psql "$DB" -qtAX -v ON_ERROR_STOP=1 "$@"; }

# 1M profiles in a workspace of their own, each with a user id and the computed state of three
# events (views of two categories, or an order), made by the same aggregate a backfill uses.
q <<'SQL' >/dev/null
SELECT cdp.create_workspace('segment-bench') AS ws \gset
SELECT cdp.define_computed_trait('eco_views', '{"function": "count", "event": "Product Viewed",
  "where": {"properties.category": "Sustainable Fashion"}}', :ws);
SELECT cdp.define_computed_trait('orders', '{"function": "count", "event": "Order Completed"}', :ws);
INSERT INTO cdp.profiles (workspace_id, profile_id)
SELECT :ws, 1000000000 + p FROM generate_series(1, 1000000) p;
INSERT INTO cdp.identifiers (workspace_id, id_type, id_value, profile_id, first_seen)
SELECT :ws, 'user_id', 'bench-' || p, 1000000000 + p, now() FROM generate_series(1, 1000000) p;
INSERT INTO cdp_internal.profile_state (workspace_id, profile_id, traits, first_seen, last_seen, computed)
SELECT :ws, 1000000000 + p,
       (SELECT cdp_internal.merge_traits_state(NULL::jsonb, NULL::timestamptz, NULL, :ws, NULL, NULL)),  -- no traits yet
       now() - interval '1 day', now(),
       cdp_internal.computed_state(:ws, NULL, now(), 'track', CASE WHEN (p + i) % 7 = 0 THEN 'Order Completed' ELSE 'Product Viewed' END,
                                   NULL, now() - interval '1 hour', p || '-' || i,
                                   jsonb_build_object('category', CASE WHEN (p * i) % 3 = 0 THEN 'Shoes' ELSE 'Sustainable Fashion' END),
                                   NULL, NULL)
FROM generate_series(1, 1000000) p, generate_series(1, 2) i GROUP BY p;
VACUUM ANALYZE cdp.profiles, cdp.identifiers, cdp_internal.profile_state;
SQL
WS=$(q -c "SELECT workspace_id FROM cdp.workspaces WHERE name = 'segment-bench'")
EXPR="computed.eco_views >= 3 AND computed.orders = 0"
MEMBERS=$(q -c "SELECT cdp.create_segment('eco_browsers', '$EXPR', workspace_id => $WS)")
# The same audience as a materialized view over the same records.
COLUMNS=$(q -c "SELECT cdp_internal.computed_columns($WS)")
q -c "CREATE MATERIALIZED VIEW bench_eco_browsers AS SELECT p.profile_id FROM (
  SELECT s.profile_id, cdp_internal.computed_of($WS, s.computed, now()) AS c FROM cdp_internal.profile_state s
  WHERE s.workspace_id = $WS) p CROSS JOIN LATERAL (SELECT $COLUMNS) AS computed WHERE $EXPR" >/dev/null
refresh=$(q <<'SQL' | tail -1
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
REFRESH MATERIALIZED VIEW bench_eco_browsers;
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
REFRESH MATERIALIZED VIEW bench_eco_browsers;
SELECT round(least(extract(epoch FROM clock_timestamp()) - :t1, :t1 - :t0)::numeric * 1000, 1);
SQL
)
same=$(q -c "SELECT count(*) = $MEMBERS FROM bench_eco_browsers")
# Ours: 300 single-event ingest calls, each a third sustainable-fashion view by someone with two
# and no order, so each makes one enter; the time of each call inside the server (no round trip).
lat=$(q <<SQL | tail -1
CREATE TEMP TABLE targets AS
SELECT 'bench-' || (s.profile_id - 1000000000) AS user_id FROM cdp_internal.profile_state s
WHERE s.workspace_id = $WS AND NOT EXISTS (SELECT FROM cdp.segment_members m WHERE m.profile_id = s.profile_id)
  AND (cdp_internal.computed_of($WS, s.computed, now()) ->> 'eco_views')::int = 2
  AND (cdp_internal.computed_of($WS, s.computed, now()) ->> 'orders')::int = 0
LIMIT 300;
CREATE TEMP TABLE took (ms float8, changes bigint);
DO \$\$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    before bigint;
    u text;
BEGIN
    FOR u IN SELECT user_id FROM targets LOOP
        SELECT count(*) INTO before FROM cdp.segment_changes WHERE workspace_id = $WS;
        t0 := clock_timestamp();
        PERFORM cdp.ingest(json_build_object('type', 'track', 'event', 'Product Viewed', 'userId', u,
                           'properties', json_build_object('category', 'Sustainable Fashion'))::text, $WS);
        t1 := clock_timestamp();
        INSERT INTO took SELECT extract(epoch FROM t1 - t0) * 1000,
                                (SELECT count(*) FROM cdp.segment_changes WHERE workspace_id = $WS) - before;
    END LOOP;
END
\$\$;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) || ' ' ||
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) || ' ' || count(*) || ' ' || sum(changes)
FROM took;
SQL
)
read -r p50 p99 calls changes <<<"$lat"
echo "segment-after-one-event  ours=${p50}ms (p50; p99 ${p99}ms)  baseline=${refresh}ms (REFRESH MATERIALIZED VIEW)  ratio=$(python3 -c "print(f'{$refresh / $p50:.0f}')")  [1000000 profiles, $MEMBERS members; $calls single-event ingest calls made $changes enters; MV has the same members: $same]"
q -c "DROP MATERIALIZED VIEW bench_eco_browsers" -c "SELECT cdp.drop_segment('eco_browsers', $WS)" >/dev/null
q -c "DELETE FROM cdp_internal.profile_state WHERE workspace_id = $WS" -c "DELETE FROM cdp.identifiers WHERE workspace_id = $WS" \
  -c "DELETE FROM cdp.profiles WHERE workspace_id = $WS" -c "DELETE FROM cdp.events WHERE workspace_id = $WS" >/dev/null

[ "${3:-}" = latency ] && exit 0
# Ingest throughput with 0, 1 and 10 realtime segments over computed traits of the shop's events.
q <<'SQL' >/dev/null
SELECT cdp.define_computed_trait('views_' || c, format('{"function": "count", "event": "Product Viewed", "where": {"properties.category": "%s"}}', c)::jsonb)
FROM unnest(ARRAY['headphones', 'laptops', 'shoes']) c;
SELECT cdp.define_computed_trait('orders', '{"function": "count", "event": "Order Completed"}');
SELECT cdp.define_computed_trait('revenue', '{"function": "sum", "event": "Order Completed", "property": "properties.price"}');
SQL
for n in 0 1 10; do
  existing=$(q -c "SELECT count(*) FROM cdp.segments WHERE workspace_id = 1 AND mode = 'realtime'")
  for i in $(seq "$existing" $((n - 1))); do
    q -c "SELECT cdp.create_segment('s$i', 'computed.views_headphones >= $((i % 5 + 1)) AND computed.orders = 0 OR computed.revenue > $((i * 50))')" >/dev/null
  done
  ./build/cdp_bench_ingest --db "$DB" --file "$DATA" --batch 500 --mode bench --rounds 3 --stitch on --profiles on \
    --label "ingest+identity+profiles+${n}-segments"
done
q -c "SELECT cdp.drop_segment(name) FROM cdp.segments WHERE workspace_id = 1" \
  -c "SELECT cdp.drop_computed_trait(name) FROM cdp.computed_traits WHERE workspace_id = 1" >/dev/null

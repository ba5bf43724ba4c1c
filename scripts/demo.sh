#!/usr/bin/env bash
# `make demo`: builds and installs pg_cdp, starts a throwaway cluster (as the postgres user),
# ingests a generated shop's events through cdp.ingest, and prints what an analyst looks at first.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

EVENTS=${CDP_DEMO_EVENTS:-50000}

echo "== building and installing pg_cdp"
./scripts/build.sh

echo "== starting a throwaway PostgreSQL 15 cluster"
export CDP_CLUSTER_DIR=${CDP_CLUSTER_DIR:-/tmp/pg_cdp_demo}
export CDP_PORT=${CDP_PORT:-54331}
URL=$(./scripts/cluster.sh start)
DB="$URL dbname=cdp_demo"
DB=${DB/dbname=postgres /}
psql "$URL" -qX -c "DROP DATABASE IF EXISTS cdp_demo" -c "CREATE DATABASE cdp_demo"
psql "$DB" -qX -c "CREATE EXTENSION cdp"

echo "== computed traits, a realtime segment and an abandoned-cart trigger, before any event arrives"
psql "$DB" -qX <<'SQL'
SELECT cdp.define_computed_trait('headphone_views', '{"function": "count", "event": "Product Viewed",
  "where": {"properties.category": "headphones"}}');
SELECT cdp.define_computed_trait('orders', '{"function": "count", "event": "Order Completed"}');
SELECT cdp.define_computed_trait('revenue', '{"function": "sum", "event": "Order Completed", "property": "properties.price"}');
SELECT cdp.define_computed_trait('favourite_category', '{"function": "most_frequent", "event": "Product Viewed",
  "property": "properties.category"}');
SELECT cdp.create_segment('headphone_browsers', 'computed.headphone_views >= 3 AND computed.orders = 0');
SELECT cdp.create_trigger('abandoned_cart', 'Product Added', 'Order Completed', '1 hour');
SQL

echo "== generating $EVENTS events (seeded) and ingesting them through cdp.ingest in batches of 500"
GEN="$CDP_CLUSTER_DIR/demo-events.ndjson"
./build/cdp_gen --events "$EVENTS" --seed 7 > "$GEN"
./build/cdp_bench_ingest --db "$DB" --file "$GEN" --batch 500 --mode load
# Statistics for the planner now, as after any bulk load, rather than when autovacuum gets to it.
psql "$DB" -qX -c "ANALYZE"

echo "== and a few payloads a broken tracker might send"
psql "$DB" -qX <<'SQL'
SELECT * FROM cdp.ingest('[{"type":"track","event":"Product Viewed"},
                           {"type":"track","anonymousId":"a-1"},
                           {"type":"purchase","userId":"u-1"},
                           {"type":"page","anonymousId":"a-2","timestamp":"2099-01-01T00:00:00Z"},
                           "[object Object]"]');
SELECT * FROM cdp.ingest('{"type":"track","event":"Checkout Started","userId":');
SQL

psql "$DB" -X <<'SQL'
\pset footer off
\echo
\echo '-- events per type'
SELECT type, count(*) AS events, count(DISTINCT coalesce(user_id, anonymous_id)) AS people_or_devices
FROM cdp.events GROUP BY type ORDER BY events DESC;

\echo '-- the commerce funnel, by event name'
SELECT event, count(*) AS events FROM cdp.events WHERE type = 'track' GROUP BY event ORDER BY events DESC;

\echo '-- sessions'
SELECT count(*) AS sessions,
       round(avg(pages), 1) AS avg_pages,
       date_trunc('second', avg(duration)) AS avg_duration,
       round(100.0 * avg(bounced::int), 1) AS bounce_rate_pct
FROM cdp.sessions;

\echo '-- sessions by device and referrer'
SELECT coalesce(device_type, '-') AS device, coalesce(referrer_medium, 'direct') AS came_from, count(*) AS sessions
FROM cdp.sessions GROUP BY 1, 2 ORDER BY sessions DESC LIMIT 10;

\echo '-- top pages'
SELECT page_path, count(*) AS views, count(DISTINCT session_id) AS sessions
FROM cdp.events WHERE type = 'page' GROUP BY page_path ORDER BY views DESC LIMIT 10;

\echo '-- campaigns: sessions they started, and orders in those sessions'
SELECT s.utm_source, s.utm_medium, s.utm_campaign, count(*) AS sessions,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM cdp.events e
                                      WHERE e.session_id = s.session_id AND e.event = 'Order Completed')) AS with_order
FROM cdp.sessions s WHERE s.utm_campaign IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY sessions DESC;

\echo '-- browsers and operating systems (from the user agent, uap-core rules)'
SELECT browser, os, count(*) AS events FROM cdp.events GROUP BY 1, 2 ORDER BY events DESC LIMIT 8;

\echo '-- identity: people stitched across devices (identifiers per profile, merges, refusals)'
SELECT (SELECT count(*) FROM cdp.profiles WHERE merged_into IS NULL) AS profiles,
       (SELECT count(*) FROM cdp.identifiers) AS identifiers,
       (SELECT count(*) FROM cdp.identity_changes WHERE kind = 'merge') AS merges,
       (SELECT count(*) FROM cdp.identity_changes WHERE kind = 'refused') AS refused_merges,
       (SELECT count(DISTINCT anonymous_id) FROM cdp.events) AS anonymous_ids;
SELECT id_type, count(*) AS identifiers, count(DISTINCT profile_id) AS profiles
FROM cdp.identifiers GROUP BY 1 ORDER BY 2 DESC;

\echo '-- the checkout funnel per person (1 hour window), with conversion and median time to each step'
SELECT step, step_name, users, conversion_from_previous, conversion_from_first, median_time_to_convert
FROM cdp.funnel_report(ARRAY['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'], '1 hour');
\echo '-- what people do right after adding a product to the cart'
SELECT * FROM cdp.paths('Product Added', depth => 2, top_n => 5);
\echo '-- golden records kept by ingest: the profiles that know the most about their person'
SELECT profile_id, traits, first_seen, last_seen FROM cdp.profile_records
ORDER BY (SELECT count(*) FROM jsonb_object_keys(traits)) DESC, profile_id LIMIT 3;
\echo '-- audiences kept by ingest: the segment (a view BI tools read) and the enter/exit/fired feed'
SELECT count(*) AS headphone_browsers_now FROM cdp_audiences.headphone_browsers;
SELECT segment, change, count(*) AS changes FROM cdp.segment_changes GROUP BY 1, 2 ORDER BY 1, 2;
\echo '-- one person, the way a support tool sees them: cdp.profile()'
SELECT jsonb_pretty(cdp.profile('user_id', (SELECT i.id_value FROM cdp.identifiers i
         JOIN cdp_internal.profile_state s ON s.workspace_id = i.workspace_id AND s.profile_id = i.profile_id
         WHERE i.id_type = 'user_id' ORDER BY s.last_seen DESC, i.id_value LIMIT 1), last_events => 3)
       - 'trait_sources');
\echo '-- rejected events by reason (nothing is lost: the raw text is kept)'
SELECT reason, count(*) AS items, min(detail) AS example FROM cdp.rejected_events GROUP BY reason ORDER BY items DESC;
SQL

echo
echo "The cluster is still running. Explore:  psql \"$DB\""
echo "Stop it:                               CDP_CLUSTER_DIR=$CDP_CLUSTER_DIR CDP_PORT=$CDP_PORT scripts/cluster.sh stop"

#!/usr/bin/env bash
# The golden-record benchmark of ../shared BENCHMARKS.md: rebuilding every profile's record from
# 1M rows of trait objects (200k profiles, 5 rows each, latest value per trait) by
# cdp.merge_traits against SQL: DISTINCT ON (profile, trait) ... ORDER BY ts DESC, then
# jsonb_object_agg. The line says whether both give the same records.
#   bench/profiles.sh DB
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DB=$1
q() { psql "$DB" -qtAX -v ON_ERROR_STOP=1 "$@"; }
# Runs the rebuild in a fresh session (cdp's library loaded first), timing it alone; prints the
# digest of the records it made, then the seconds.
timed() {
  settle "$DB"
  q <<SQL
SELECT cdp.normalise_identifier('email', 'warm@example.com') IS NOT NULL AS warm \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CREATE TEMP TABLE golden AS $1;
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3) AS seconds \gset
SELECT count(*) || ' profiles, digest ' || left(md5(string_agg(r::text, ';' ORDER BY profile)), 12) FROM golden;
SELECT :seconds;
SQL
}

q <<'SQL' 2>/dev/null
DROP TABLE IF EXISTS bench_traits;
CREATE TABLE bench_traits AS
  SELECT i % 200000 AS profile,
         jsonb_build_object('email', 'p' || (i % 200000) || '.' || (i % 7) || '@example.com',
                            'plan', (ARRAY['free', 'plus', 'pro'])[1 + (hashint4(i) & 2147483647) % 3],
                            'city', 'city' || (hashint4(i * 3) & 255), 'visits', i % 50,
                            'newsletter', (i % 2 = 0)) AS traits,
         timestamptz '2026-01-01' + ((hashint4(i * 7) & 2147483647) % 30000000) * interval '1 second'
           + i * interval '1 microsecond' AS ts   -- distinct per row: no ties to break
  FROM generate_series(1, 1000000) i;
VACUUM ANALYZE bench_traits;
SQL
# Each side three times (one run varied by 20% between bench runs); the medians are compared.
ours=$(three "SELECT profile, cdp.merge_traits(traits, ts) AS r FROM bench_traits GROUP BY profile")
sql=$(three "SELECT profile, jsonb_object_agg(key, value) AS r FROM (
  SELECT DISTINCT ON (profile, key) profile, key, value FROM bench_traits, jsonb_each(traits)
  ORDER BY profile, key, ts DESC) latest GROUP BY profile")
ours_runs=$(tail -1 <<<"$ours"); sql_runs=$(tail -1 <<<"$sql")
ours_s=$(median $ours_runs); sql_s=$(median $sql_runs)
ours_a=$(tail -2 <<<"$ours" | head -1); sql_a=$(tail -2 <<<"$sql" | head -1)
same=$([ "$ours_a" = "$sql_a" ] && echo "same records" || echo "records differ: SQL $sql_a")
echo "golden-record-rebuild  ours=${ours_s}s  baseline=${sql_s}s (DISTINCT ON (profile, trait) ... jsonb_object_agg)  ratio=$(python3 -c "print(f'{$sql_s / max($ours_s, 0.001):.1f}')")  [1000000 trait rows, 5 traits each; ours: $ours_a; $same; medians of ${ours_runs// /, } s and ${sql_runs// /, } s]"
# A bound: the same grouping with an aggregate that does nearly nothing (max(ts)). Any
# aggregate over these groups costs at least this (a simpler one may even be planned more
# cheaply), so no merge_traits can beat baseline / this.
floor=$(median $(tail -1 <<<"$(three "SELECT profile, max(ts) AS r FROM bench_traits GROUP BY profile")"))
echo "golden-record-rebuild-floor  max(ts) over the same groups: ${floor}s  [the scan and grouping any aggregate pays at least: no aggregate can reach more than $(python3 -c "print(f'{$sql_s / max($floor, 0.001):.1f}')")x here]"
q -c "DROP TABLE bench_traits" >/dev/null

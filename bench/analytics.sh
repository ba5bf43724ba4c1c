#!/usr/bin/env bash
# The behavioural-analytics benchmarks of ../shared BENCHMARKS.md, over the events in cdp.events
# (bench/run leaves the 1M generated events there): a 4-step funnel per person, with a 1 hour
# window, by cdp.window_funnel against
#   (a) a SQL self-join chain (each step joined to the one before, within the window), and
#   (b) a first-occurrence form: min(ts) FILTER for the first step, then a LATERAL min(ts) per
#       step (indexed), which is faster but not exact: it follows only the earliest start;
# then how the cost grows from 2 to 8 steps, and day-1 / day-7 retention by cdp.retention against
# joins of per-day distinct people. Each line says whether the answers agree; its times are
# medians of three runs (the growth line's are single runs).
#   bench/analytics.sh DB
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DB=$1
q() { psql "$DB" -qtAX -v ON_ERROR_STOP=1 "$@"; }

# Runs SQL in a fresh session; prints the seconds it took, then its last output line.
timed() {
  settle "$DB"
  q <<SQL
SET max_parallel_workers_per_gather = ${CDP_BENCH_PARALLEL:-2};
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$1
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
}
# The same three times: prints what the last run printed, with the median of the three runs'
# seconds in place of its own (a single run of a fraction of a second moves by a third with
# what the machine does meanwhile).
timed3() {
  local out runs=()
  for _ in 1 2 3; do
    out=$(timed "$1") || return 1
    runs+=("$(tail -1 <<<"$out")")
  done
  head -n -1 <<<"$out"
  median "${runs[@]}"
}
seconds() { tail -1 <<<"$1"; }
answer() { tail -2 <<<"$1" | head -1; }
ratio() { python3 -c "print(f'{$1 / max($2, 0.001):.1f}')"; }

STEPS="'Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'"
# Each input table, new, is read into shared buffers before any side is timed: the first query
# to read a new table's pages (into buffers the server has not used yet, with a large cache)
# would otherwise pay for them, and that is always ours, which runs first.
q -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null
q <<SQL 2>/dev/null
DROP TABLE IF EXISTS bench_funnel_input;
CREATE TABLE bench_funnel_input AS
  SELECT cdp_internal.person_of(profile_id, user_id, anonymous_id) AS person, "timestamp" AS ts, event
  FROM cdp.events WHERE event IN ($STEPS);
CREATE INDEX ON bench_funnel_input (person, event, ts);
VACUUM ANALYZE bench_funnel_input;
SELECT count(pg_prewarm(c)) FROM (SELECT 'bench_funnel_input'::regclass UNION ALL
  SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'bench_funnel_input'::regclass) AS r(c) \g /dev/null
SQL
EVENTS=$(q -c "SELECT count(*) FROM cdp.events")
ROWS=$(q -c "SELECT count(*) FROM bench_funnel_input")
PEOPLE=$(q -c "SELECT count(DISTINCT person) FROM bench_funnel_input")

# Each form ends with the number of people at each level, as text, to compare.
levels="SELECT string_agg(level || ':' || n, ' ' ORDER BY level) FROM (SELECT level, count(*) AS n FROM per_person GROUP BY level) l;"

ours_sql() {  # $1: the conditions
  echo "CREATE TEMP TABLE per_person AS SELECT person, cdp.window_funnel('1 hour', ts, $1) AS level
        FROM bench_funnel_input GROUP BY person; $levels"
}
conditions() {  # the first $1 of the 8 steps (the 4 of the funnel, twice)
  python3 -c "
steps = ['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'] * 2
print(', '.join(f\"event = '{s}'\" for s in steps[:$1]))"
}
selfjoin_sql() {  # a chain of $1 joins
  python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
steps = ['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'] * 2
alias = [f"s{i}" for i in range(n)]
joins = []
for i in range(1, n):
    joins.append(f"LEFT JOIN bench_funnel_input {alias[i]} ON {alias[i]}.person = s0.person"
                 f" AND {alias[i]}.event = '{steps[i]}' AND {alias[i]}.ts >= {alias[i-1]}.ts"
                 f" AND {alias[i]}.ts <= s0.ts + interval '1 hour'")
level = " ".join(f"WHEN {alias[i]}.ts IS NOT NULL THEN {i+1}" for i in reversed(range(1, n)))
print(f"""CREATE TEMP TABLE per_person AS
  SELECT p.person, coalesce(l.level, 0) AS level
  FROM (SELECT DISTINCT person FROM bench_funnel_input) p
  LEFT JOIN (SELECT s0.person, max(CASE {level} ELSE 1 END) AS level
             FROM bench_funnel_input s0 {' '.join(joins)}
             WHERE s0.event = '{steps[0]}' GROUP BY s0.person) l USING (person);""")
PY
  echo "$levels"
}
lateral_sql() {
  echo "CREATE TEMP TABLE per_person AS
  SELECT f.person, CASE WHEN t4 IS NOT NULL THEN 4 WHEN t3 IS NOT NULL THEN 3 WHEN t2 IS NOT NULL THEN 2
                        WHEN t1 IS NOT NULL THEN 1 ELSE 0 END AS level
  FROM (SELECT person, min(ts) FILTER (WHERE event = 'Product Viewed') AS t1 FROM bench_funnel_input GROUP BY person) f
  LEFT JOIN LATERAL (SELECT min(ts) AS t2 FROM bench_funnel_input x WHERE x.person = f.person
                     AND x.event = 'Product Added' AND x.ts >= f.t1 AND x.ts <= f.t1 + interval '1 hour') s2 ON true
  LEFT JOIN LATERAL (SELECT min(ts) AS t3 FROM bench_funnel_input x WHERE x.person = f.person
                     AND x.event = 'Checkout Started' AND x.ts >= s2.t2 AND x.ts <= f.t1 + interval '1 hour') s3 ON true
  LEFT JOIN LATERAL (SELECT min(ts) AS t4 FROM bench_funnel_input x WHERE x.person = f.person
                     AND x.event = 'Order Completed' AND x.ts >= s3.t3 AND x.ts <= f.t1 + interval '1 hour') s4 ON true;
  $levels"
}

ours=$(timed3 "$(ours_sql "$(conditions 4)")")
selfjoin=$(timed3 "$(selfjoin_sql 4)")
lateral=$(timed3 "$(lateral_sql)")
agree() { [ "$(answer "$1")" = "$(answer "$2")" ] && echo "same levels" || echo "levels differ: $(answer "$2")"; }
# Peak private memory (MB) of a backend that ran the funnel alone (no workers): VmHWM less the
# shared memory it touched.
peak=$(q <<SQL | tail -1
SET max_parallel_workers_per_gather = 0;
$(ours_sql "$(conditions 4)")
WITH s AS (SELECT pg_read_file('/proc/' || pg_backend_pid() || '/status') AS t)
SELECT (substring(t FROM 'VmHWM:\s+(\d+)')::bigint - substring(t FROM 'RssShmem:\s+(\d+)')::bigint) / 1024 FROM s;
SQL
)
echo "funnel-4-steps  ours=$(seconds "$ours")s  baseline=$(seconds "$selfjoin")s (SQL self-join chain)  ratio=$(ratio "$(seconds "$selfjoin")" "$(seconds "$ours")")  [$EVENTS events, $ROWS funnel events of $PEOPLE people; ours: $(answer "$ours"), peak ${peak} MB private memory serial; self-join: $(agree "$ours" "$selfjoin")]"
echo "funnel-4-steps  ours=$(seconds "$ours")s  baseline=$(seconds "$lateral")s (min(ts) FILTER + LATERAL, indexed)  ratio=$(ratio "$(seconds "$lateral")" "$(seconds "$ours")")  [first-occurrence form: $(agree "$ours" "$lateral")]"
# A bound: the same grouping by person with count(*). Any aggregate over these groups costs at
# least this, so no funnel aggregate can beat the self-join by more than self-join / this.
floor=$(timed3 "CREATE TEMP TABLE per_person AS SELECT person, count(*) AS level FROM bench_funnel_input GROUP BY person; SELECT 1;")
echo "funnel-4-steps-floor  count(*) over the same groups: $(seconds "$floor")s  [the scan and grouping any aggregate pays at least: no aggregate can reach more than $(ratio "$(seconds "$selfjoin")" "$(seconds "$floor")")x the self-join here]"

growth=""
for n in 2 4 6 8; do
  o=$(timed "$(ours_sql "$(conditions "$n")")")
  s=$(CDP_BENCH_PARALLEL=2 timed "SET statement_timeout = '300s'; $(selfjoin_sql "$n")" 2>/dev/null || echo "timeout")
  growth+=" ${n} steps: ours $(seconds "$o")s, self-join $(seconds "$s")s;"
done
echo "funnel-growth ${growth% ;}"

# Heavy users: the same funnel over 1M rows of 2000 people with 500 events a day each (the
# shape of an app's most active users), where the self-join's pairs multiply with every step.
q <<'SQL'
DROP TABLE IF EXISTS bench_funnel_input;
CREATE TABLE bench_funnel_input AS
  SELECT 'h' || (i % 2000) AS person,
         timestamptz '2026-11-01' + ((hashint4(i) & 2147483647) % 86400) * interval '1 second' AS ts,
         (ARRAY['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed', 'Page Viewed'])[1 + (hashint4(i * 7) & 2147483647) % 5] AS event
  FROM generate_series(1, 1000000) i;
CREATE INDEX ON bench_funnel_input (person, event, ts);
VACUUM ANALYZE bench_funnel_input;
SELECT count(pg_prewarm(c)) FROM (SELECT 'bench_funnel_input'::regclass UNION ALL
  SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'bench_funnel_input'::regclass) AS r(c) \g /dev/null
SQL
ours=$(timed3 "$(ours_sql "$(conditions 4)")")
selfjoin=$(timed3 "SET statement_timeout = '600s'; $(selfjoin_sql 4)" 2>/dev/null || echo timeout)
echo "funnel-4-steps-heavy-users  ours=$(seconds "$ours")s  baseline=$(seconds "$selfjoin")s (SQL self-join chain)  ratio=$(ratio "$(seconds "$selfjoin")" "$(seconds "$ours")")  [1000000 events of 2000 people; ours: $(answer "$ours"); self-join: $(agree "$ours" "$selfjoin")]"

DAY=$(q -c "SELECT (min(\"timestamp\") AT TIME ZONE 'UTC')::date + 3 FROM cdp.events")
ret_ours=$(timed3 "SELECT concat_ws(' ', sum(r[1]::int), sum(r[2]::int), sum(r[3]::int)) FROM (
  SELECT cdp.retention(d = date '$DAY', d = date '$DAY' + 1, d = date '$DAY' + 7) AS r
  FROM (SELECT cdp_internal.person_of(profile_id, user_id, anonymous_id) AS person,
               (\"timestamp\" AT TIME ZONE 'UTC')::date AS d FROM cdp.events) e
  WHERE d IN (date '$DAY', date '$DAY' + 1, date '$DAY' + 7) GROUP BY person) p;")
ret_join=$(timed3 "WITH e AS (SELECT cdp_internal.person_of(profile_id, user_id, anonymous_id) AS person,
                                 (\"timestamp\" AT TIME ZONE 'UTC')::date AS d FROM cdp.events),
  d0 AS (SELECT DISTINCT person FROM e WHERE d = date '$DAY'),
  d1 AS (SELECT DISTINCT person FROM e WHERE d = date '$DAY' + 1),
  d7 AS (SELECT DISTINCT person FROM e WHERE d = date '$DAY' + 7)
  SELECT concat_ws(' ', (SELECT count(*) FROM d0), (SELECT count(*) FROM d0 JOIN d1 USING (person)),
                        (SELECT count(*) FROM d0 JOIN d7 USING (person)));")
same=$([ "$(answer "$ret_ours")" = "$(answer "$ret_join")" ] && echo "same counts" || echo "counts differ: $(answer "$ret_join")")
echo "retention  ours=$(seconds "$ret_ours")s  baseline=$(seconds "$ret_join")s (joins of per-day distinct people)  ratio=$(ratio "$(seconds "$ret_join")" "$(seconds "$ret_ours")")  [cohort $DAY, day 0 / day 1 / day 7 people: $(answer "$ret_ours"); $same]"
q -c "DROP TABLE bench_funnel_input" >/dev/null

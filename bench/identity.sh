#!/usr/bin/env bash
# The identity benchmarks of ../shared BENCHMARKS.md, on generated graphs of string identifiers
# shaped like people (a user id, an email, two to five anonymous ids; every 50th person shares
# a laptop with the one before). Anonymous ids are UUIDs, as the SDKs make them: random, so a
# new one lands anywhere in an index, never next to the one before.
#   1. components from scratch at about 1.1M edges against SQL label propagation (UPDATE ... SET
#      l = min(neighbour) until stable) and pgRouting's pgr_connectedComponents on the same edges
#      pre-mapped to integers;
#   2. at about 10M edges: the backend's peak memory for the components, and the cost of adding
#      10k edges through ingest to the stored identity graph against a full rebuild of it: the
#      components of all stored edges, cdp.identifiers written again with a profile id per
#      component and its two indexes, and cdp.profiles. The components alone, and a bare
#      (node, component) mapping with one index, are printed too.
#   bench/identity.sh DB [PEOPLE [GRAPH_PEOPLE]]   (defaults 250000 and 2200000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DB=$1
PEOPLE=${2:-250000}
GRAPH_PEOPLE=${3:-2200000}
PHASES=${CDP_BENCH_IDENTITY_PHASES:-1 2}   # which of the two parts below to run

q() { psql "$DB" -qtAX -v ON_ERROR_STOP=1 "$@"; }

# Makes table $1 with the edges of $2 people.
make_edges() {
  q -v tbl="$1" -v people="$2" <<'SQL'
DROP TABLE IF EXISTS :tbl;
CREATE TABLE :tbl AS
  SELECT 'u' || p AS a, 'e' || p || '@example.com' AS b FROM generate_series(1, :people) p
  UNION ALL
  SELECT 'u' || p, md5('a' || p || '.' || k)::uuid::text FROM generate_series(1, :people) p,
         generate_series(1, 2 + (hashint4(p) & 3)) k
  UNION ALL
  SELECT 'u' || p, md5('a' || (p - 1) || '.1')::uuid::text FROM generate_series(2, :people, 50) p;
-- As a table in use: hint bits set, and its pages in shared buffers (VACUUM reads through a
-- small ring; a scan of a table this size keeps them), so that no side pays for first reads.
VACUUM ANALYZE :tbl;
SELECT count(*) FROM :tbl \g /dev/null
SQL
}

# Runs SQL in a fresh session and prints the seconds it took. The session has loaded cdp's
# library first (a first call in a new session maps it in): the query is timed, not the loading.
# The machine settles first (lib.sh).
timed() {
  settle "$DB"
  q <<SQL | tail -1
SELECT cdp.normalise_identifier('email', 'warm@example.com') IS NOT NULL AS warm \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$1
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
}
ratio() { python3 -c "print(f'{$1 / $2:.1f}')"; }

# ---- 1. components from scratch against the baselines ---------------------------------------
if [[ " $PHASES " == *" 1 "* ]]; then
q -c "CREATE EXTENSION IF NOT EXISTS pgrouting CASCADE" -c "DROP TABLE IF EXISTS bench_labels, bench_ids, bench_int_edges" >/dev/null
make_edges bench_edges "$PEOPLE"
EDGES=$(q -c "SELECT count(*) FROM bench_edges")
NODES=$(q -c "SELECT count(*) FROM (SELECT a FROM bench_edges UNION SELECT b FROM bench_edges) n")

# The two short runs (ours, pgRouting) are timed three times and their medians compared: a
# run of a third of a second moves by a third with what the machine does meanwhile. Label
# propagation, which takes half a minute, runs once.
ours_runs=$(three "SELECT count(*) FROM cdp.connected_components('SELECT a, b FROM bench_edges');")
ours=$(median $ours_runs)
components=$(q -c "SELECT count(DISTINCT component) FROM cdp.connected_components('SELECT a, b FROM bench_edges')")

labels=$(timed "
CREATE TABLE bench_labels AS SELECT n AS node, n AS l FROM (SELECT a FROM bench_edges UNION SELECT b FROM bench_edges) s(n);
CREATE UNIQUE INDEX ON bench_labels (node);
DO \$\$ DECLARE changed bigint; BEGIN LOOP
  UPDATE bench_labels t SET l = m.l FROM (
    SELECT x.node, min(y.l) AS l FROM (SELECT a AS node, b AS other FROM bench_edges UNION ALL SELECT b, a FROM bench_edges) x
    JOIN bench_labels y ON y.node = x.other GROUP BY x.node) m
  WHERE t.node = m.node AND m.l < t.l;
  GET DIAGNOSTICS changed = ROW_COUNT; EXIT WHEN changed = 0; END LOOP; END \$\$;")
label_components=$(q -c "SELECT count(DISTINCT l) FROM bench_labels")

map=$(timed "
CREATE TABLE bench_ids AS SELECT row_number() OVER () AS id, n FROM (SELECT a FROM bench_edges UNION SELECT b FROM bench_edges) s(n);
CREATE UNIQUE INDEX ON bench_ids (n);
CREATE TABLE bench_int_edges AS SELECT row_number() OVER () AS id, x.id AS source, y.id AS target, 1.0::float8 AS cost, 1.0::float8 AS reverse_cost
  FROM bench_edges e JOIN bench_ids x ON x.n = e.a JOIN bench_ids y ON y.n = e.b;")
pgr_runs=$(three "SELECT count(*) FROM pgr_connectedComponents('SELECT id, source, target, cost, reverse_cost FROM bench_int_edges');")
pgr=$(median $pgr_runs)
pgr_components=$(q -c "SELECT count(DISTINCT component) FROM pgr_connectedComponents('SELECT id, source, target, cost, reverse_cost FROM bench_int_edges')")
q -c "DROP TABLE bench_labels, bench_ids, bench_int_edges" >/dev/null

echo "identity-components  ours=${ours}s  baseline=${labels}s (SQL label propagation)  ratio=$(ratio "$labels" "$ours")  [$EDGES edges, $NODES nodes; components: ours $components, label propagation $label_components; ours median of ${ours_runs// /, } s]"
echo "identity-components  ours=${ours}s  baseline=${pgr}s (pgr_connectedComponents on int ids; mapping strings to ints took ${map}s more)  ratio=$(ratio "$pgr" "$ours")  [components: pgRouting $pgr_components; pgRouting median of ${pgr_runs// /, } s]"
fi

# ---- 2. a large stored graph: memory, incremental cost against a rebuild --------------------
if [[ " $PHASES " == *" 2 "* ]]; then
make_edges bench_graph "$GRAPH_PEOPLE"
GRAPH_EDGES=$(q -c "SELECT count(*) FROM bench_graph")
# Peak private memory of the backend (VmHWM less the shared memory it touched).
mem=$(q <<'SQL' | tail -1
SELECT count(*) FROM cdp.connected_components('SELECT a, b FROM bench_graph');
WITH s AS (SELECT pg_read_file('/proc/' || pg_backend_pid() || '/status') AS t)
SELECT (substring(t FROM 'VmHWM:\s+(\d+)')::bigint - substring(t FROM 'RssShmem:\s+(\d+)')::bigint) / 1024 FROM s;
SQL
)
echo "identity-components-memory  ours peak ${mem} MB private memory of the backend for $GRAPH_EDGES edges  [target < 2048 MB for 10M edges]"

# The stored identity graph, built from the same edges.
q <<'SQL' >/dev/null
TRUNCATE cdp.identifiers, cdp_internal.identity_edges, cdp.identity_changes, cdp.profiles, cdp_internal.profile_state,
         cdp.events, cdp.rejected_events, cdp_internal.message_ids, cdp_internal.session_state;
-- people here hold up to six anonymous ids; let new ones join
INSERT INTO cdp.identity_rules (workspace_id, id_type, priority, max_per_profile) VALUES (1, 'anonymous_id', 5, 50)
  ON CONFLICT (workspace_id, id_type) DO UPDATE SET max_per_profile = 50;
CREATE TEMP TABLE comp AS SELECT * FROM cdp.connected_components('SELECT a, b FROM bench_graph');
CREATE TEMP TABLE comp_profile AS
  SELECT component, nextval('cdp_internal.profile_id_seq') AS profile_id FROM (SELECT DISTINCT component FROM comp) c;
INSERT INTO cdp.profiles (workspace_id, profile_id) SELECT 1, profile_id FROM comp_profile;
-- Stored as ingest stores them: an email or anonymous id came with its user's identify, and its
-- row holds that edge (the first user's, for a laptop two people share); the edge of the second
-- person to use a shared laptop is a row of its own, its a end first by type then value.
CREATE TEMP TABLE held AS SELECT DISTINCT ON (b) b, a FROM bench_graph ORDER BY b, a;
INSERT INTO cdp.identifiers (workspace_id, id_type, id_value, profile_id, first_seen,
                             via_type, via_value, via_source, via_first_seen, via_last_seen)
  SELECT 1, CASE WHEN node LIKE '%@%' THEN 'email' WHEN node LIKE 'u%' THEN 'user_id' ELSE 'anonymous_id' END,
         node, p.profile_id, '2026-01-01',
         CASE WHEN h.a IS NOT NULL THEN 'user_id' END, h.a, CASE WHEN h.a IS NOT NULL THEN 'bench' END,
         CASE WHEN h.a IS NOT NULL THEN timestamptz '2026-01-01' END, CASE WHEN h.a IS NOT NULL THEN timestamptz '2026-01-01' END
  FROM comp JOIN comp_profile p USING (component) LEFT JOIN held h ON h.b = comp.node
  ORDER BY p.profile_id, node;  -- each person's identifiers together, as the edges were before
INSERT INTO cdp_internal.identity_edges (workspace_id, a_type, a_value, b_type, b_value, source, first_seen, last_seen, merged)
  SELECT 1, CASE WHEN g.b LIKE '%@%' THEN 'email' ELSE 'anonymous_id' END, g.b, 'user_id', g.a, 'bench', '2026-01-01', '2026-01-01', true
  FROM bench_graph g WHERE NOT EXISTS (SELECT FROM held h WHERE h.b = g.b AND h.a = g.a);
VACUUM ANALYZE cdp.identifiers, cdp_internal.identity_edges, cdp.profiles;
SQL
STORED=$(q -c "SELECT count(*) FROM cdp.identity_edges")
HELD=$(q -c "SELECT count(*) FROM cdp.identifiers WHERE via_type IS NOT NULL")

# 10k identify events, each linking a new anonymous id to an existing user; without stitching
# and with it (other ids, same shape): the difference is the identity work. Profile records
# and audiences (which follow stitching) are off on both sides: they have lines of their own.
batch_sql() {
  echo "SET cdp.stitch_identities = $2; SET cdp.update_profiles = off;
SELECT sum(accepted) FROM generate_series(0, 19) b, LATERAL cdp.ingest((
  SELECT json_agg(json_build_object('type', 'identify', 'userId', 'u' || (1 + (hashint4(b * 500 + i + $3) & 2147483647) % $GRAPH_PEOPLE),
                  'anonymousId', md5('new-$1-' || b || '.' || i)::uuid::text, 'messageId', 'inc-$1-' || b || '.' || i,
                  'timestamp', '2026-11-20T10:00:00Z'))::text FROM generate_series(1, 500) i),
  received_at => '2026-11-20 10:00:01+00');"
}
# Five rounds each, alternating; the medians are compared (a run takes about a second, and
# moves by a tenth with what the machine does meanwhile).
runs_without=(); runs_with=()
for round in 1 2 3 4 5; do
  runs_without+=("$(timed "$(batch_sql "off$round" off "$((round * 100))")")")
  runs_with+=("$(timed "$(batch_sql "on$round" on "$((round * 100 + 7))")")")
done
without=$(median "${runs_without[@]}")
with=$(median "${runs_with[@]}")
incremental=$(python3 -c "print(f'{max($with - $without, 0):.3f}')")
# A full rebuild of the graph's state: components of every stored merged edge, cdp.identifiers
# written again with a profile id per component (every column: its rows hold most edges) and the
# two indexes ingest's lookups read (by value; by profile, for the limits), and cdp.profiles with
# its key, one row per new profile id. The edges in rows of their own are read and kept. Values
# are unique across types here, so nodes are values. Still less than a real rebuild: profile ids
# are not kept stable, nothing is re-attributed.
components_only=$(timed "SELECT count(*) FROM cdp.connected_components('SELECT a_value, b_value FROM cdp.identity_edges WHERE merged');")
rebuild=$(timed "DROP TABLE IF EXISTS bench_rebuilt, bench_rebuilt_profiles;
CREATE TABLE bench_rebuilt AS
  WITH c AS MATERIALIZED (SELECT * FROM cdp.connected_components('SELECT a_value, b_value FROM cdp.identity_edges WHERE merged')),
  p AS (SELECT component, row_number() OVER () AS profile_id FROM c WHERE node = component)
  SELECT i.workspace_id, i.id_type, i.id_value, p.profile_id, i.first_seen, i.event_id, i.via_type, i.via_value,
         i.via_source, i.via_event_id, i.via_first_seen, i.via_last_seen
  FROM cdp.identifiers i JOIN c ON c.node = i.id_value JOIN p USING (component);
ALTER TABLE bench_rebuilt ADD PRIMARY KEY (workspace_id, id_type, id_value) INCLUDE (profile_id);
CREATE INDEX ON bench_rebuilt (workspace_id, profile_id) INCLUDE (id_type);
CREATE TABLE bench_rebuilt_profiles AS
  SELECT 1 AS workspace_id, g::bigint AS profile_id, now() AS created_at, NULL::bigint AS merged_into
  FROM generate_series(1, (SELECT max(profile_id) FROM bench_rebuilt WHERE workspace_id = 1)) g;
ALTER TABLE bench_rebuilt_profiles ADD PRIMARY KEY (workspace_id, profile_id);")
# The least any rebuild writes: (node, component) text pairs with a unique index on node.
q -c "DROP TABLE bench_rebuilt, bench_rebuilt_profiles" >/dev/null  # not in the time below
bare=$(timed "CREATE TABLE bench_rebuilt AS SELECT * FROM cdp.connected_components('SELECT a_value, b_value FROM cdp.identity_edges WHERE merged');
CREATE UNIQUE INDEX ON bench_rebuilt (node);")
q -c "DROP TABLE bench_rebuilt" >/dev/null
pct() { python3 -c "print(f'{100 * $1 / $2:.2f}%')"; }
echo "identity-incremental  ours=${incremental}s (stitching 10k new edges in ingest: ${with}s with, ${without}s without)  baseline=${rebuild}s (full rebuild: components of the $STORED stored edges, $HELD of them held in identifiers' rows; cdp.identifiers written again with its two indexes, and cdp.profiles)  ratio=$(pct "$incremental" "$rebuild") of a rebuild  [runs with: ${runs_with[*]} s, without: ${runs_without[*]} s; components alone ${components_only}s; a bare (node, component) mapping with one index ${bare}s, against which ours is $(pct "$incremental" "$bare")]"
# What storing 10k new edges costs at the least: the same rows (a new anonymous id holding its
# edge to an existing user, as ingest stores it) written by plain INSERTs, with no lookup and no
# rule, in batches of 500 as above, then rolled back. Stitching cannot cost less.
# The profile ids are drawn from the profiles' own range (the sequence is not reset by the
# TRUNCATE above), so that each new identifier lands among its profile's in the index by profile.
read -r PMIN PSPAN < <(q -F ' ' -c "SELECT min(profile_id), max(profile_id) - min(profile_id) + 1 FROM cdp.profiles")
floor_sql() {
  echo "BEGIN;"
  for b in $(seq 0 19); do
    echo "INSERT INTO cdp.identifiers (workspace_id, id_type, id_value, profile_id, first_seen, event_id,
                             via_type, via_value, via_source, via_event_id, via_first_seen, via_last_seen)
  SELECT 1, 'anonymous_id', md5('floor-$1-$b.' || i)::uuid::text, $PMIN + (hashint4($b * 500 + i) & 2147483647) % $PSPAN, now(), 'floor',
         'user_id', 'u' || (1 + (hashint4($b * 500 + i) & 2147483647) % $GRAPH_PEOPLE), 'identify', 'floor', now(), now()
  FROM generate_series(1, 500) i;"
  done
  echo "ROLLBACK;"
}
floors=()
for round in 1 2 3; do floors+=("$(timed "$(floor_sql "$round")")"); done
floor=$(median "${floors[@]}")
echo "identity-incremental-floor  plain INSERTs of the same 10k identifiers, each holding its edge (no lookup, no rule): ${floor}s = $(pct "$floor" "$rebuild") of the rebuild  [the least that storing the identifiers, each holding its edge, costs]"
q -c "DROP TABLE bench_graph" >/dev/null
fi

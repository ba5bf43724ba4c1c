#!/usr/bin/env bash
# The identity benchmarks of ../shared BENCHMARKS.md, on a generated graph of string
# identifiers shaped like people (a user id, an email, two to five anonymous ids; a few users
# share a device, and some are linked by a support merge), against:
#   - SQL label propagation (UPDATE ... SET l = min(neighbour) until stable),
#   - pgRouting's pgr_connectedComponents on the same edges pre-mapped to integers,
# then the incremental cost of ingesting 10k new edges into the stored identity graph against
# a rebuild of the graph, and the backend's peak memory.
#   bench/identity.sh DB [PEOPLE]        (PEOPLE default 250000: about 1.1M edges)
set -euo pipefail
DB=$1
PEOPLE=${2:-250000}

psql "$DB" -qX -v ON_ERROR_STOP=1 -v people="$PEOPLE" <<'SQL'
DROP TABLE IF EXISTS bench_edges, bench_labels, bench_ids, bench_int_edges;
CREATE EXTENSION IF NOT EXISTS pgrouting CASCADE;
-- person p: user id u<p>, email e<p>@example.com, anonymous ids a<p>.<k>; every 50th person
-- shares anonymous id a<p-1>.1 of the person before (a shared laptop).
CREATE TABLE bench_edges AS
  SELECT 'u' || p AS a, 'e' || p || '@example.com' AS b FROM generate_series(1, :people) p
  UNION ALL
  SELECT 'u' || p, 'a' || p || '.' || k FROM generate_series(1, :people) p,
         generate_series(1, 2 + (hashint4(p) & 3)) k
  UNION ALL
  SELECT 'u' || p, 'a' || (p - 1) || '.1' FROM generate_series(2, :people, 50) p;
ANALYZE bench_edges;
SQL
EDGES=$(psql "$DB" -qtAX -c "SELECT count(*) FROM bench_edges")
NODES=$(psql "$DB" -qtAX -c "SELECT count(*) FROM (SELECT a FROM bench_edges UNION SELECT b FROM bench_edges) n")

# One timed statement in a fresh session; prints seconds, and the backend's peak memory in MB
# (VmHWM less the shared memory it touched) when asked.
timed() {
  psql "$DB" -qtAX -v ON_ERROR_STOP=1 <<SQL
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$1
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
}
ours=$(timed "SELECT count(*) FROM cdp.connected_components('SELECT a, b FROM bench_edges');" | tail -1)
components=$(psql "$DB" -qtAX -c "SELECT count(DISTINCT component) FROM cdp.connected_components('SELECT a, b FROM bench_edges')")
mem=$(psql "$DB" -qtAX <<'SQL'
SELECT count(*) FROM cdp.connected_components('SELECT a, b FROM bench_edges');
WITH s AS (SELECT pg_read_file('/proc/' || pg_backend_pid() || '/status') AS t)
SELECT ((substring(t FROM 'VmHWM:\s+(\d+)')::bigint - substring(t FROM 'RssShmem:\s+(\d+)')::bigint) / 1024) FROM s;
SQL
)
mem=$(echo "$mem" | tail -1)

labels=$(timed "
CREATE TABLE bench_labels AS SELECT n AS node, n AS l FROM (SELECT a FROM bench_edges UNION SELECT b FROM bench_edges) s(n);
CREATE UNIQUE INDEX ON bench_labels (node);
DO \$\$ DECLARE changed bigint; BEGIN LOOP
  UPDATE bench_labels t SET l = m.l FROM (
    SELECT x.node, min(y.l) AS l FROM (SELECT a AS node, b AS other FROM bench_edges UNION ALL SELECT b, a FROM bench_edges) x
    JOIN bench_labels y ON y.node = x.other GROUP BY x.node) m
  WHERE t.node = m.node AND m.l < t.l;
  GET DIAGNOSTICS changed = ROW_COUNT; EXIT WHEN changed = 0; END LOOP; END \$\$;" | tail -1)
label_components=$(psql "$DB" -qtAX -c "SELECT count(DISTINCT l) FROM bench_labels")

map=$(timed "
CREATE TABLE bench_ids AS SELECT row_number() OVER () AS id, n FROM (SELECT a FROM bench_edges UNION SELECT b FROM bench_edges) s(n);
CREATE UNIQUE INDEX ON bench_ids (n);
CREATE TABLE bench_int_edges AS SELECT row_number() OVER () AS id, x.id AS source, y.id AS target, 1.0::float8 AS cost, 1.0::float8 AS reverse_cost
  FROM bench_edges e JOIN bench_ids x ON x.n = e.a JOIN bench_ids y ON y.n = e.b;" | tail -1)
pgr=$(timed "SELECT count(*) FROM pgr_connectedComponents('SELECT id, source, target, cost, reverse_cost FROM bench_int_edges');" | tail -1)
pgr_components=$(psql "$DB" -qtAX -c "SELECT count(DISTINCT component) FROM pgr_connectedComponents('SELECT id, source, target, cost, reverse_cost FROM bench_int_edges')")

ratio() { python3 -c "print(f'{$1 / $2:.1f}')"; }
echo "identity-components  ours=${ours}s  baseline=${labels}s (SQL label propagation)  ratio=$(ratio "$labels" "$ours")  [$EDGES edges, $NODES nodes; components: ours $components, label propagation $label_components]"
echo "identity-components  ours=${ours}s  baseline=${pgr}s (pgr_connectedComponents on int ids; mapping strings to ints took ${map}s more)  ratio=$(ratio "$pgr" "$ours")  [components: pgRouting $pgr_components]"
echo "identity-components-memory  ours peak ${mem} MB private memory of the backend for $EDGES edges"

# Incremental: the stored identity graph (identifiers, edges, profiles) built from the same
# edges, then 10k identify events that each link a new anonymous id to an existing user,
# through ingest; against rebuilding the graph's components from the stored edges.
psql "$DB" -qX -v ON_ERROR_STOP=1 <<'SQL'
TRUNCATE cdp.identifiers, cdp.identity_edges, cdp.identity_changes, cdp.profiles;
-- people here hold up to six anonymous ids; let new ones join
INSERT INTO cdp.identity_rules (workspace_id, id_type, priority, max_per_profile) VALUES (1, 'anonymous_id', 5, 50)
  ON CONFLICT (workspace_id, id_type) DO UPDATE SET max_per_profile = 50;
CREATE TEMP TABLE comp AS SELECT * FROM cdp.connected_components('SELECT a, b FROM bench_edges');
INSERT INTO cdp.profiles (workspace_id, profile_id)
  SELECT 1, nextval('cdp_internal.profile_id_seq') FROM (SELECT DISTINCT component FROM comp) c;
CREATE TEMP TABLE comp_profile AS
  SELECT component, row_number() OVER (ORDER BY component) + (SELECT min(profile_id) - 1 FROM cdp.profiles) AS profile_id
  FROM (SELECT DISTINCT component FROM comp) c;
INSERT INTO cdp.identifiers (workspace_id, id_type, id_value, profile_id, first_seen)
  SELECT 1, CASE left(node, 1) WHEN 'u' THEN 'user_id' WHEN 'e' THEN 'email' ELSE 'anonymous_id' END,
         node, p.profile_id, '2026-01-01'
  FROM comp JOIN comp_profile p USING (component);
INSERT INTO cdp.identity_edges (workspace_id, a_type, a_value, b_type, b_value, source, first_seen, last_seen, merged)
  SELECT 1, 'user_id', a, CASE left(b, 1) WHEN 'e' THEN 'email' ELSE 'anonymous_id' END, b, 'bench', '2026-01-01', '2026-01-01', true
  FROM bench_edges;
ANALYZE cdp.identifiers; ANALYZE cdp.identity_edges;
SQL
STORED=$(psql "$DB" -qtAX -c "SELECT count(*) FROM cdp.identity_edges")
# 10k identify events, each linking a new anonymous id to an existing user; run once without
# stitching and once with it (other ids, same shape): the difference is the identity work.
batch_sql() {
  echo "SET cdp.stitch_identities = $2;
SELECT sum(accepted) FROM generate_series(0, 19) b, LATERAL cdp.ingest((
  SELECT json_agg(json_build_object('type', 'identify', 'userId', 'u' || (1 + (hashint4(b * 500 + i + $3) & 2147483647) % $PEOPLE),
                  'anonymousId', 'new-$1-' || b || '.' || i, 'messageId', 'inc-$1-' || b || '.' || i,
                  'timestamp', '2026-11-20T10:00:00Z'))::text FROM generate_series(1, 500) i),
  received_at => '2026-11-20 10:00:01+00');"
}
without=$(timed "$(batch_sql off off 0)" | tail -1)
with=$(timed "$(batch_sql on on 7)" | tail -1)
incremental=$(python3 -c "print(f'{max($with - $without, 0):.3f}')")
rebuild=$(timed "SELECT count(DISTINCT component) FROM cdp.connected_components('SELECT a_value, b_value FROM cdp.identity_edges WHERE merged');" | tail -1)
echo "identity-incremental  ours=${incremental}s (stitching 10k new edges in ingest: ${with}s with, ${without}s without)  baseline=${rebuild}s (components rebuilt from the $STORED stored edges)  ratio=$(python3 -c "print(f'{100 * $incremental / $rebuild:.1f}%')") of a rebuild"

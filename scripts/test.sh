#!/usr/bin/env bash
# Everything `make test` proves: unit tests (ctest), pg_regress and isolation tests, each on a
# temporary PostgreSQL instance run as the postgres user.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

echo "== build"
./scripts/build.sh

echo "== unit tests (ctest)"
(cd build && ctest --output-on-failure -j2)

# Results stay in build/test-output for reading after a failure; the instances are removed.
WORK="$REPO_ROOT/build/test-output"
rm -rf "$WORK"
pg_writable_dir "$WORK"
trap 'rm -rf "$WORK"/regress/instance "$WORK"/isolation/instance' EXIT
status=0

echo "== pg_regress"
pg_writable_dir "$WORK/regress"
if ! as_pg "$PGXS_DIR/src/test/regress/pg_regress" --inputdir=test --outputdir="$WORK/regress" \
      --temp-instance="$WORK/regress/instance" --bindir="$PG_BINDIR" --temp-config=test/regress.conf \
      --schedule=test/schedule; then
  cat "$WORK/regress/regression.diffs" 2>/dev/null || true
  status=1
fi

echo "== isolation tests"
pg_writable_dir "$WORK/isolation"
if ! as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" --inputdir=test --outputdir="$WORK/isolation" \
      --temp-instance="$WORK/isolation/instance" --bindir="$PG_BINDIR" --temp-config=test/regress.conf \
      --schedule=test/isolation_schedule; then
  cat "$WORK/isolation/regression.diffs" 2>/dev/null || true
  status=1
fi
exit $status

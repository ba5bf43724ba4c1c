#!/usr/bin/env bash
# Everything `make test` proves: unit tests (ctest), pg_regress and isolation tests, each on a
# temporary PostgreSQL instance run as the postgres user, and the collector over HTTP.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

echo "== build"
./scripts/build.sh

echo "== unit tests (ctest)"
(cd build && ctest --output-on-failure -j2)

# The core once more under AddressSanitizer and UBSan (CPP_IN_POSTGRES.md rule 12). uap-core's
# thousands of cases are left to the plain run: they test the rules, and take minutes here.
echo "== unit tests under AddressSanitizer and UBSan"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCDP_SANITIZE=ON >/dev/null
cmake --build build/asan --target cdp_unit_tests -j2 >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build/asan/cdp_unit_tests --gtest_filter='-UserAgent.UapCore*' --gtest_brief=1

# The core's one threaded part (connected components' helper thread) under ThreadSanitizer,
# which exits non-zero on any race it sees.
echo "== threaded unit tests under ThreadSanitizer"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DCDP_TSAN=ON >/dev/null
cmake --build build/tsan --target cdp_unit_tests -j2 >/dev/null
build/tsan/cdp_unit_tests --gtest_filter='ComponentBuilder.*' --gtest_brief=1

# Results stay in build/test-output for reading after a failure; the instances are removed.
WORK="$REPO_ROOT/build/test-output"
rm -rf "$WORK"
pg_writable_dir "$WORK"
trap 'rm -rf "$WORK"/regress/instance "$WORK"/isolation/instance' EXIT
status=0

# Runs one pg_regress-style suite on its own temporary instance; the diffs are shown on failure.
run_suite() {
  local name=$1 driver=$2 schedule=$3
  pg_writable_dir "$WORK/$name"
  if ! as_pg "$driver" --inputdir=test --outputdir="$WORK/$name" --temp-instance="$WORK/$name/instance" \
        --bindir="$PG_BINDIR" --temp-config=test/regress.conf --schedule="$schedule"; then
    cat "$WORK/$name/regression.diffs" 2>/dev/null || true
    status=1
  fi
}

echo "== pg_regress"
run_suite regress "$PGXS_DIR/src/test/regress/pg_regress" test/schedule

echo "== isolation tests"
run_suite isolation "$PGXS_DIR/src/test/isolation/pg_isolation_regress" test/isolation_schedule

echo "== the collector over HTTP"
test/clients/collector.sh || status=1
exit $status

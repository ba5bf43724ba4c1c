#!/usr/bin/env bash
# `make unit`: the core's unit tests alone (GoogleTest through ctest), without a database; the
# quick loop while working on src/core. `make test` runs them too, and everything else.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target cdp_unit_tests -j2 >/dev/null
cd build && ctest --output-on-failure -j2

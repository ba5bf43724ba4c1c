#!/usr/bin/env bash
# Builds and installs the extension (PGXS) and builds the core, unit tests and tools (CMake).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
make -s -j2
make -s install >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null

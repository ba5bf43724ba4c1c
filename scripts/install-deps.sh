#!/usr/bin/env bash
# Installs every Debian package pg_cdp needs to build, test and demo. Idempotent: does nothing
# when everything is present; otherwise runs `apt-get update` once and installs what is missing.
#   scripts/install-deps.sh         build, test and demo
#   scripts/install-deps.sh bench   and the benchmarks' baselines
set -euo pipefail

PACKAGES=(
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  g++ make cmake pkg-config
  libpqxx-dev rapidjson-dev libre2-dev libyaml-cpp-dev uap-core
  libgtest-dev
  libcpp-httplib-dev zlib1g-dev curl   # the collector, and its HTTP tests
  chromium                             # the browser SDK test (test/clients/browser.test.mjs)
)
# `install-deps.sh bench` adds what only the benchmarks use: pgRouting, a baseline of the
# identity bench.
if [ "${1:-}" = bench ]; then
  PACKAGES+=(postgresql-15-pgrouting)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm run the SDK tests (test/clients). A Node.js that brings its own npm (as
# NodeSource's does) counts; only when either is missing are Debian's packages installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the demo and benchmarks, run as a non-root user.
#   scripts/cluster.sh start   initdb (if needed) and start; prints the connection string
#   scripts/cluster.sh stop    stop it
#   scripts/cluster.sh url     print the connection string
# CDP_CLUSTER_DIR (default /tmp/pg_cdp_cluster) and CDP_PORT (default 54329) choose where.
set -euo pipefail
source "$(dirname "$0")/common.sh"

DIR=${CDP_CLUSTER_DIR:-/tmp/pg_cdp_cluster}
PORT=${CDP_PORT:-54329}
URL="host=$DIR port=$PORT user=postgres dbname=postgres"

case "${1:-}" in
  start)
    pg_writable_dir "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_pg "$PG_BINDIR/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
      cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 15min
timezone = 'UTC'
CONF
    fi
    if ! as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
    fi
    echo "$URL"
    ;;
  stop)
    if [ -f "$DIR/data/PG_VERSION" ]; then
      as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  url)
    echo "$URL"
    ;;
  *)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac

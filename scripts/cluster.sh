#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the demo and benchmarks, run as a non-root user.
#   scripts/cluster.sh start   initdb (if needed) and start; prints the connection string
#   scripts/cluster.sh stop    stop it
#   scripts/cluster.sh url     print the connection string
# CDP_CLUSTER_DIR (default /tmp/pg_cdp_cluster) and CDP_PORT (default 54329) choose where;
# CDP_SHARED_BUFFERS (default 1GB) sizes the buffer cache at each start. With
# CDP_RESERVE_HUGE_PAGES=1 (root only) start first reserves the huge pages that cache needs
# (vm.nr_hugepages) and stop gives them back; without them the server uses normal pages.
set -euo pipefail
source "$(dirname "$0")/common.sh"

DIR=${CDP_CLUSTER_DIR:-/tmp/pg_cdp_cluster}
PORT=${CDP_PORT:-54329}
URL="host=$DIR port=$PORT user=postgres dbname=postgres"
BUFFERS=${CDP_SHARED_BUFFERS:-1GB}

case "${1:-}" in
  start)
    pg_writable_dir "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_pg "$PG_BINDIR/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
      cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
huge_pages = try
max_wal_size = 4GB
checkpoint_timeout = 15min
timezone = 'UTC'
CONF
    fi
    if ! as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      if [ "${CDP_RESERVE_HUGE_PAGES:-}" = 1 ]; then
        need=$(as_pg "$PG_BINDIR/postgres" -D "$DIR/data" -C shared_memory_size_in_huge_pages -c shared_buffers="$BUFFERS")
        have=$(cat /proc/sys/vm/nr_hugepages)
        if [ "$need" -gt 0 ] && [ "$have" -lt "$need" ]; then
          [ -f "$DIR/nr_hugepages.before" ] || echo "$have" >"$DIR/nr_hugepages.before"
          { echo "$need" >/proc/sys/vm/nr_hugepages; } 2>/dev/null || true
          [ "$(cat /proc/sys/vm/nr_hugepages)" -ge "$need" ] ||
            echo "cluster.sh: could not reserve $need huge pages; the server uses normal pages" >&2
        fi
      fi
      as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -o "-c shared_buffers=$BUFFERS" -w start >/dev/null
    fi
    echo "$URL"
    ;;
  stop)
    if [ -f "$DIR/data/PG_VERSION" ]; then
      as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$DIR/nr_hugepages.before" ]; then
      { cat "$DIR/nr_hugepages.before" >/proc/sys/vm/nr_hugepages; } 2>/dev/null || true
      rm -f "$DIR/nr_hugepages.before"
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

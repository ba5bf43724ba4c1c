# Shared by the scripts: where PostgreSQL lives, and running its programs as a non-root user
# (PostgreSQL refuses to run as root, and CI runs as root).
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_BINDIR/pg_config" --pgxs)")")")
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Runs a command as the postgres user when we are root, as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Makes a directory the postgres user can write.
pg_writable_dir() {
  mkdir -p "$1"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$1"; fi
}

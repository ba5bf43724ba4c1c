# Shared by the benchmark scripts (sourced).

# Lets the machine settle before a timed run, so that no background work left by an earlier
# step runs alongside it on two cores: autovacuum workers (after a bulk load or a baseline that
# rewrote its table many times) are waited for, up to a minute; then a checkpoint and a sync, so
# that nothing written before is being written out during the run. Without this the same
# components query measured 0.36 s or 0.52 s.
settle() {
  for _ in $(seq 60); do
    [ "$(psql "$1" -qtAX -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && break
    sleep 1
  done
  psql "$1" -qtAX -c "CHECKPOINT" >/dev/null
  sync
}

# The median of three or more numbers.
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Runs the caller's `timed SQL` three times. Prints what the last run printed before its seconds
# (a digest of what it made, say), then the three runs' seconds on one line.
three() {
  local runs=() out
  for _ in 1 2 3; do
    out=$(timed "$1")
    runs+=("$(tail -1 <<<"$out")")
  done
  head -n -1 <<<"$out"
  echo "${runs[*]}"
}

# Shared by the benchmark scripts (sourced).

# Lets the machine settle before a timed run: a checkpoint, then a sync, so that what was
# written before (tables just made, a baseline that rewrote its table many times) is not being
# written out while the next run is timed. On two cores the kernel's writeback competes with the
# run; it made the same query 0.36 s or 0.50 s.
settle() {
  psql "$1" -qtAX -c "CHECKPOINT" >/dev/null
  sync
}

#!/bin/bash
# Runs bench_train, bench_data, bench_vit and bench_ssl one after another, each once the 1-minute
# load average is below MAX_LOAD (waiting at most MAX_WAIT seconds), and after each prints the load
# and how many CPU-seconds OTHER processes used while it ran (all CPU time in /proc/stat minus the
# benchmark's own, Python reference included): the numbers are only comparable when that is near 0.
#   tools/bench/run_all.sh [bench_train bench_data bench_vit bench_ssl]   (BUILD=build MAX_LOAD=1.0 MAX_WAIT=600)
set -euo pipefail
build=${BUILD:-build}
max_load=${MAX_LOAD:-1.0}
max_wait=${MAX_WAIT:-600}
hz=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
load1() { cut -d' ' -f1 /proc/loadavg; }

benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(bench_train bench_data bench_vit bench_ssl)
exec 3>&1
for name in "${benches[@]}"; do
  waited=0
  while awk -v l="$(load1)" -v m="$max_load" 'BEGIN { exit !(l >= m) }' && [ "$waited" -lt "$max_wait" ]; do
    sleep 15
    waited=$((waited + 15))
  done
  load_before=$(load1)
  ticks_before=$(busy_ticks)
  start=$(date +%s.%N)
  TIMEFORMAT='%U %S'
  own=$( { time "$build/bench/$name" >&3 2>&3; } 2>&1 ) || true
  wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
  ticks_after=$(busy_ticks)
  awk -v name="$name" -v b="$ticks_before" -v a="$ticks_after" -v hz="$hz" -v own="$own" -v wall="$wall" \
      -v l0="$load_before" -v l1="$(load1)" -v cores="$(nproc)" 'BEGIN {
    split(own, t, " "); mine = t[1] + t[2]; others = (a - b) / hz - mine; if (others < 0) others = 0
    printf "== %s: %.0f s wall; load average (1 min) %s before, %s after; CPU-s: this benchmark %.1f, other processes %.1f (of %.0f available)\n\n",
           name, wall, l0, l1, mine, others, cores * wall }'
done

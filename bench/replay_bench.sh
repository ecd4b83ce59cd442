#!/usr/bin/env bash
# replay_bench.sh - `eximguard replay` against `eximstats` on the same synthetic Exim mainlog.
#
#   bench/replay_bench.sh [LINES]        (default 1000000; numbers go to bench/README.md)
#
# Generates LINES lines from 5,000 accounts with bench/gen_mainlog (seeded, so every run reads
# the same bytes) into a temporary directory, then runs eximstats and our replay RUNS times each
# (default 5), interleaved, and prints the median, min and max wall time of each, the ratio of
# the medians, and the peak RSS (/usr/bin/time %M, the largest of the runs).
#
# Our replay: `$EXIMGUARD_BIN replay --json FILE` when that binary answers `replay --help`,
# else bench/replay_driver (the same work: parse every line, feed the detectors, take the
# incidents). The script says which one it measured. EXIMGUARD_BIN must be built already (the
# script builds only the generator and the driver).
#
# Environment: BUILD_DIR (default build-perf; configured Release-like if absent), RUNS,
# EXIMGUARD_BIN (default $BUILD_DIR/sidecar/eximguard), EXIMSTATS_ARGS (default none: its
# full default report), KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
runs=${RUNS:-5}
build=${BUILD_DIR:-build-perf}
bin=${EXIMGUARD_BIN:-$build/sidecar/eximguard}

if ! command -v eximstats >/dev/null && [[ ! -x /usr/sbin/eximstats ]]; then
  scripts/install-deps.sh  # exim4-daemon-heavy brings exim4-base, which has eximstats
fi
eximstats=$(command -v eximstats || echo /usr/sbin/eximstats)
if [[ ! -x /usr/bin/time ]]; then
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq time >/dev/null
fi

[[ -f $build/CMakeCache.txt ]] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target gen_mainlog replay_driver >/dev/null

tmp=$(mktemp -d)
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$tmp"' EXIT
log=$tmp/mainlog
"$build/bench/gen_mainlog" -n "$lines" -a 5000 -s 42 -o "$log"

# (CLI11 answers an unknown verb's --help with the main help: look for the verb's own usage.)
if [[ -x $bin ]] && "$bin" replay --help 2>&1 | grep -q '^Usage:.* replay'; then
  replay=("$bin" replay --json "$log")
  what="eximguard replay ($bin)"
else
  replay=("$build/bench/replay_driver" "$log")
  what="bench/replay_driver (eximguard has no 'replay' verb yet)"
fi
# shellcheck disable=SC2206
stats=("$eximstats" ${EXIMSTATS_ARGS:-} "$log")

# measure FILE CMD...: runs CMD once; appends "milliseconds peak_kb" to FILE.
measure() {
  local out=$1 t0 t1
  shift
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%M' -o "$tmp/rss" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; then
    echo "replay_bench: failed: $*" >&2
    tail -n 5 "$tmp/stderr" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  echo "$(((t1 - t0) / 1000000)) $(cat "$tmp/rss")" >>"$out"
}

cat "$log" >/dev/null  # into the page cache before the first timed run
for ((i = 1; i <= runs; i++)); do
  measure "$tmp/eximstats.txt" "${stats[@]}"
  measure "$tmp/replay.txt" "${replay[@]}"
  [[ $i == 1 ]] && cp "$tmp/stdout" "$tmp/replay.out"
done

# "median min max" of the milliseconds, and the largest peak RSS in MB.
summary() {
  sort -n "$1" | awk '{ms[NR] = $1; if ($2 > kb) kb = $2}
    END {printf "%d %d %d %.1f", ms[int((NR + 1) / 2)], ms[1], ms[NR], kb / 1024}'
}
read -r s_med s_min s_max s_mb <<<"$(summary "$tmp/eximstats.txt")"
read -r r_med r_min r_max r_mb <<<"$(summary "$tmp/replay.txt")"

echo "file:      $lines lines, $(du -m "$log" | cut -f1) MB, 5000 accounts (bench/gen_mainlog -s 42)"
echo "machine:   $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "replay:    $what"
echo "output:    $(head -c 300 "$tmp/replay.out")"
printf '%-10s %8s %8s %8s %10s\n' "" "median" "min" "max" "peak RSS"
printf '%-10s %6d ms %6d ms %6d ms %7s MB\n' eximstats "$s_med" "$s_min" "$s_max" "$s_mb"
printf '%-10s %6d ms %6d ms %6d ms %7s MB\n' replay "$r_med" "$r_min" "$r_max" "$r_mb"
awk -v s="$s_med" -v r="$r_med" -v mb="$r_mb" -v runs="$runs" 'BEGIN {
  ratio = r > 0 ? s / r : 0
  printf "ratio:     %.1fx faster than eximstats (medians of %s runs); target >= 10x (aim 20x): %s\n",
         ratio, runs, (ratio >= 10 ? "met" : "NOT met")
  printf "memory:    replay peak RSS %.1f MB; target <= 128 MB: %s\n", mb, (mb <= 128 ? "met" : "NOT met")
}'

#!/bin/sh
# daemon_memory.sh - RSS of `eximguard start` over a synthetic day of mainlog (~2.4 M lines,
# 50,000 accounts), RUNS times (default 3): bench/daemon_memory.cpp says how.
#
#   bench/daemon_memory.sh [RUNS]         env: BUILD (build dir, default ./build), LINES
#                                              (2400000), ACCOUNTS (50000)
# Each run prints the RSS profile by 2 h of log time and writes its 1 s samples to
# /tmp/eg-mem-run<i>.csv. Exits 1 if any run failed (daemon exit code not 0, lines missed).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
runs=${1:-3}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target eximguard daemon_memory >/dev/null
fail=0
i=0
while [ "$i" -lt "$runs" ]; do
  i=$((i + 1))
  echo "== run $i/$runs"
  "$build/bench/daemon_memory" --eximguard "$build/sidecar/eximguard" \
    --lines "${LINES:-2400000}" --accounts "${ACCOUNTS:-50000}" --csv "/tmp/eg-mem-run$i.csv" ||
    fail=1
done
exit "$fail"

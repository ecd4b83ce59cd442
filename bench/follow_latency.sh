#!/bin/sh
# follow_latency.sh - latency of `eximguard start` from "line appended to the mainlog" to
# "incident recorded in SQLite", RUNS times (default 5): bench/follow_latency.cpp says how.
#
#   bench/follow_latency.sh [RUNS]        env: BUILD (build dir, default ./build), N (300),
#                                              RATE (background lines/s, 2000)
# Runs as the user owning the sandbox (root needs nothing else; another user needs a group of
# its own for exim_group, which the harness takes from getgid()). Exits 1 if any run failed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
runs=${1:-5}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target eximguard follow_latency >/dev/null
fail=0
i=0
while [ "$i" -lt "$runs" ]; do
  i=$((i + 1))
  echo "== run $i/$runs"
  "$build/bench/follow_latency" --eximguard "$build/sidecar/eximguard" -n "${N:-300}" \
    --rate "${RATE:-2000}" || fail=1
done
exit "$fail"

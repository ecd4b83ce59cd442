#!/usr/bin/env bash
# test.sh - installs what is needed, builds, and runs every test of eximguard:
#   1. plain build (RelWithDebInfo): unit, sidecar, and end-to-end tests with a real Exim;
#   2. ASan+UBSan build: every test that does not need Exim to load the module;
#   3. clang libFuzzer build: the guard's argument fuzzer for FUZZ_SECONDS (default 30).
# Exits non-zero if anything fails. Needs root (apt-get, and the end-to-end tests create a
# local user and run Exim). Build trees: build/, build-asan/, build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh

echo "== plain build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure --timeout 300

echo "== ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEG_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 300

echo "== libFuzzer (guard arguments)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEG_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp tests/fuzz/corpus/* "$corpus"/
build-fuzz/tests/fuzz/guard_fuzz -max_total_time="${FUZZ_SECONDS:-30}" -timeout=5 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
echo "all test stages passed"

#!/usr/bin/env bash
# exim_bench.sh - the whole-Exim benchmark: what eximguard costs a real Exim, per recipient.
#
# SUMMARY
#   sudo bench/exim_bench.sh [-n RUNS] [-r RCPTS] [-w WARMUP_RCPTS] [--d-budget SECONDS]
#                            [--acl-from CONFIG] [--tmp DIR] [-B BUILD_DIR] [--no-build]
#                            [--deadline SECONDS] [--keep] [--strict]
#
# DESCRIPTION
#   Starts four sandboxed Exim daemons (`exim -C CONF -bdf -oX PORT`) whose configs, rendered from
#   bench/exim-bench.conf.in, differ only in the RCPT ACL's limiter:
#     (a) none
#     (b) ${dlfunc} of bench/noop_dlfunc.so (eximguard_noop): the same 5 arguments and the same
#         surrounding ACL statements as (c). Both use the eximguard block of acl_smtp_rcpt as it
#         ships in exim-config/test/exim-test.conf.in (--acl-from: from another config, e.g.
#         exim-config/exim.conf.example or an experimental ACL), read at every run
#     (c) ${dlfunc} of eximguard.so (eximguard_rcpt), limits so high that every recipient passes
#         (sender 500000/minute, 500000/hour); the table's statistics are checked afterwards: every
#         call must have answered plain `ok` (not fail-open)
#     (d) Exim's own `ratelimit = 1000000 / 1h / per_rcpt / $authenticated_id` (hints DB in the
#         sandbox spool)
#   and times, with build/bench/smtp_burst, ONE pipelined SMTP session per run: EHLO, AUTH PLAIN,
#   MAIL, RCPTS pipelined RCPTs (default 20000) from one authenticated account, RSET, QUIT. Every
#   RCPT must get 250. Runs are interleaved a,b,c,d,a,b,c,d,... (RUNS per variant, default 5)
#   after one unmeasured warm-up session per variant; the table shows the median µs per
#   recipient of each variant, the cost each limiter adds over (a), and the ratios
#   (c-a)/(b-a) (target <= 1.25: the guard costs Exim little more than calling any dlfunc) and
#   (d-a)/(c-a) (target >= 40: the guard is far cheaper than Exim's ratelimit).
#
#   (d) is slow: Exim 4.96 opens the Berkeley DB hints file, writes it and calls fdatasync() twice
#   for every recipient, so one RCPT costs 0.5-10 ms on a disk, depending on the disk. Its
#   per-recipient cost does not depend on the session's size, so to stay bounded each of (d)'s
#   sessions gets only as many RCPTs (at most RCPTS, at least 200) as fit what is left of
#   --d-budget seconds (default 60) over its runs left, at the slowest cost seen so far (its
#   warm-up first); the table says so when it used fewer than RCPTS. The fsyncs are most of it:
#   with the sandbox on tmpfs (--tmp /dev/shm) (d) costs about 70 µs/rcpt here, not 400-1000.
#
# SANDBOX
#   Like tests/e2e/exim_harness.cpp: everything lives in a mktemp dir under /tmp (or --tmp DIR;
#   the table names its file system, which decides what (d) costs): spool/ and log/ owned by the
#   Exim user, the .so files copied to lib/ where the Exim user can read them; the daemons bind
#   as root then drop to the Exim user; nothing in /etc is touched. The shared-memory
#   segment is made by `eximguard run` (or, if the sidecar does not build, by a tiny helper
#   compiled here against libeximguard_table.a).
#
# LIMITS
#   Needs root (chown, and Exim's -C as root keeps the daemon's bind-then-drop behaviour). With a
#   built tree it takes about 1.5 minutes; builds are bounded by timeouts, and after them a
#   watchdog ends the run after --deadline seconds (default 240) whatever happens. On any exit
#   the daemons are stopped, their reception processes killed by pid, the segment unlinked and
#   the temp dir removed (kept with --keep, for debugging).
#   The numbers are only as quiet as the machine: runs are interleaved and the median is taken,
#   and the load average is printed with the table.
#   Exit status: 0 done (targets shown as PASS/MISS), 1 failure, 3 with --strict and a target
#   missed.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
RUNS=5
RCPTS=20000
WARMUP=2000
DEADLINE=240
D_BUDGET=60
DO_BUILD=1
KEEP=0
STRICT=0
ACL_FROM=
TMP_PARENT=/tmp
PASSWORD=bench-secret
ACCOUNT=bench@eximguard-bench.example
VARIANTS=(a b c d)

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0" | sed -n '/^SUMMARY/,/^$/p' >&2; exit 2; }
die() { echo "exim_bench: $*" >&2; exit 1; }
log() { echo "exim_bench: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    -n|--runs) RUNS=$2; shift 2 ;;
    -r|--rcpts) RCPTS=$2; shift 2 ;;
    -w|--warmup) WARMUP=$2; shift 2 ;;
    -B|--build-dir) BUILD=$2; shift 2 ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    --d-budget) D_BUDGET=$2; shift 2 ;;
    --acl-from) ACL_FROM=$2; shift 2 ;;
    --tmp) TMP_PARENT=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    --strict) STRICT=1; shift ;;
    -h|--help) usage ;;
    *) echo "exim_bench: unknown option $1" >&2; usage ;;
  esac
done
for n in "$RUNS" "$RCPTS" "$WARMUP" "$DEADLINE" "$D_BUDGET"; do
  [[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"
done
(( RUNS >= 1 && RCPTS >= 1 )) || die "RUNS and RCPTS must be at least 1"
[[ $EUID -eq 0 ]] || die "must run as root (it chowns the sandbox and starts Exim daemons)"

EXIM=$(command -v exim || command -v exim4 || true)
[[ -x $EXIM ]] || die "no exim binary (install exim4-daemon-heavy)"
EXIM_USER=
for u in Debian-exim exim mailnull mail; do
  if getent passwd "$u" >/dev/null; then EXIM_USER=$u; break; fi
done
[[ -n $EXIM_USER ]] || die "no Exim user on this system"
EXIM_GROUP=$(id -gn "$EXIM_USER")

# ---------------------------------------------------------------- cleanup, watchdog

WORK=
SEGMENT=
WATCHDOG=
declare -A DAEMON_PID=() PORT=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
  for v in "${!DAEMON_PID[@]}"; do kill -TERM "${DAEMON_PID[$v]}" 2>/dev/null; done
  for v in "${!DAEMON_PID[@]}"; do
    for _ in $(seq 50); do kill -0 "${DAEMON_PID[$v]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${DAEMON_PID[$v]}" 2>/dev/null
    wait "${DAEMON_PID[$v]}" 2>/dev/null
  done
  if [[ -n $WORK && -d $WORK ]]; then
    # Reception processes forked by our daemons keep the daemon's command line (our config
    # path): kill exactly those, by pid.
    local p
    for p in /proc/[0-9]*; do
      if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$WORK/"; then
        kill -KILL "${p#/proc/}" 2>/dev/null
      fi
    done
  fi
  [[ -n $SEGMENT ]] && rm -f "/dev/shm/${SEGMENT#/}"
  if [[ -n $WORK && -d $WORK ]]; then
    if (( KEEP )); then log "kept $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "stopped (deadline of ${DEADLINE}s or SIGTERM)"; exit 124' TERM


# ---------------------------------------------------------------- build

if (( DO_BUILD )); then
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    timeout 120 cmake -S "$ROOT" -B "$BUILD" >/dev/null || die "cmake configure failed"
  fi
  log "building eximguard_so noop_dlfunc smtp_burst"
  timeout 200 cmake --build "$BUILD" -j2 --target eximguard_so noop_dlfunc smtp_burst >/dev/null \
    || die "build failed (cmake --build $BUILD --target eximguard_so noop_dlfunc smtp_burst)"
fi
GUARD_SO=$BUILD/exim-dlfunc/eximguard.so
NOOP_SO=$BUILD/bench/noop_dlfunc.so
BURST=$BUILD/bench/smtp_burst
SIDECAR=$BUILD/sidecar/eximguard
for f in "$GUARD_SO" "$NOOP_SO" "$BURST"; do [[ -f $f ]] || die "missing $f (build it first)"; done

WORK=$(mktemp -d "$TMP_PARENT/eximguard-bench-XXXXXX") || die "cannot make a temp dir in $TMP_PARENT"
chmod 0755 "$WORK"
SEGMENT=/eximguard-bench-$$-$RANDOM
mkdir -m 0755 "$WORK/lib"
mkdir -m 0700 "$WORK/state"
install -m 0644 "$GUARD_SO" "$NOOP_SO" "$WORK/lib/"

# The sidecar may be mid-development: if it does not build, make the segment with a helper.
SEG_TOOL=
SIDECAR_OK=1
if (( DO_BUILD )); then
  timeout 200 cmake --build "$BUILD" -j2 --target eximguard >"$WORK/sidecar-build.log" 2>&1 \
    || SIDECAR_OK=0
fi
[[ -x $SIDECAR ]] || SIDECAR_OK=0
if (( ! SIDECAR_OK )); then
  if (( DO_BUILD )); then
    log "the sidecar did not build ($WORK/sidecar-build.log): making the segment with a helper"
  else
    log "no $SIDECAR: making the segment with a helper"
  fi
  [[ -f $BUILD/exim-dlfunc/libeximguard_table.a ]] \
    || timeout 200 cmake --build "$BUILD" -j2 --target eximguard_table >/dev/null \
    || die "cannot build eximguard_table"
  cat >"$WORK/seg_tool.cpp" <<'EOF'
// seg_tool: `create NAME GROUP PER_MINUTE PER_HOUR` | `stats NAME` (ok N fail_open N).
#include <cstdio>
#include <cstdlib>
#include <string>
#include "segment.h"
#include "table.h"
int main(int argc, char** argv) {
  std::string error;
  const std::string verb = argc > 2 ? argv[1] : "";
  if (verb == "create" && argc == 6) {
    eg::SegmentSpec spec;
    spec.name = argv[2];
    spec.group = argv[3];
    eg::SegmentOutcome outcome{};
    auto seg = eg::CreateSegment(spec, &outcome, &error);
    if (!seg) { fprintf(stderr, "%s\n", error.c_str()); return 1; }
    eg::Policy p;
    for (auto& l : p.class_limits) l = {eg::kUnlimited, eg::kUnlimited};
    p.class_limits[static_cast<int>(eg::KeyClass::kSender)] = {
        static_cast<uint32_t>(atol(argv[4])), static_cast<uint32_t>(atol(argv[5]))};
    if (!eg::PublishPolicy(seg->table, p, &error)) { fprintf(stderr, "%s\n", error.c_str()); return 1; }
    return 0;
  }
  if (verb == "stats" && argc == 3) {
    auto seg = eg::OpenSegment(argv[2], &error);
    if (!seg) { fprintf(stderr, "%s\n", error.c_str()); return 1; }
    const eg::StatTotals t = eg::Totals(seg->table);
    printf("\"ok\": %llu \"fail_open\": %llu\n", (unsigned long long)t.verdicts[0],
           (unsigned long long)t.fail_open);
    return 0;
  }
  fprintf(stderr, "usage: seg_tool create NAME GROUP PER_MINUTE PER_HOUR | stats NAME\n");
  return 2;
}
EOF
  timeout 200 c++ -std=c++20 -O2 -I"$ROOT/exim-dlfunc" -o "$WORK/seg_tool" "$WORK/seg_tool.cpp" \
    "$BUILD/exim-dlfunc/libeximguard_table.a" -lrt || die "cannot build the segment helper"
  SEG_TOOL=$WORK/seg_tool
fi

# From here on (the builds above are bounded by their own timeouts) the run ends after DEADLINE
# seconds whatever happens; every child is bounded too, so the TERM trap runs within seconds.
(
  sleep "$DEADLINE" &
  sleeper=$!
  trap 'kill $sleeper 2>/dev/null; exit 0' TERM
  wait "$sleeper" && kill -TERM $$ 2>/dev/null
) &
WATCHDOG=$!

# ---------------------------------------------------------------- the segment

SIDECAR_CONF=$WORK/state/eximguard.json
make_segment() {
  if [[ -n $SEG_TOOL ]]; then
    timeout 20 "$SEG_TOOL" create "$SEGMENT" "$EXIM_GROUP" 500000 500000
  else
    cat >"$SIDECAR_CONF" <<EOF
{
  "shm_name": "$SEGMENT",
  "state_dir": "$WORK/state",
  "exim_log": "$WORK/c/log/mainlog",
  "exim_group": "$EXIM_GROUP",
  "limits": {
    "sender": {"per_minute": 500000, "per_hour": 500000},
    "cwd": {"per_minute": 0, "per_hour": 0},
    "uid": {"per_minute": 0, "per_hour": 0}
  }
}
EOF
    chmod 0600 "$SIDECAR_CONF"
    timeout 20 "$SIDECAR" run --config "$SIDECAR_CONF" >"$WORK/state/run.out" 2>&1 \
      || { cat "$WORK/state/run.out" >&2; return 1; }
  fi
}
# Prints "OK FAIL_OPEN": calls the guard answered plain ok, and calls that failed open.
guard_stats() {
  local out
  if [[ -n $SEG_TOOL ]]; then
    out=$(timeout 20 "$SEG_TOOL" stats "$SEGMENT")
  else
    out=$(timeout 20 "$SIDECAR" top --config "$SIDECAR_CONF" --json -n 1)
  fi
  local ok fo
  ok=$(grep -o '"ok": *[0-9]*' <<<"$out" | head -1 | grep -o '[0-9]*$')
  fo=$(grep -o '"fail_open": *[0-9]*' <<<"$out" | head -1 | grep -o '[0-9]*$')
  [[ -n $ok && -n $fo ]] || { echo "$out" >&2; return 1; }
  echo "$ok $fo"
}
make_segment || die "cannot create the segment $SEGMENT"

# ---------------------------------------------------------------- the four daemons

# The eximguard RCPT block (b) and (c) run, from the shipped test config (or --acl-from).
ACL_FROM=${ACL_FROM:-$ROOT/exim-config/test/exim-test.conf.in}
RCPT_BLOCK=$(awk '/# --- eximguard: count outgoing/ { on = 1 }
                  on { print }
                  on && /# --- end eximguard ---/ { exit }' "$ACL_FROM") \
  || die "cannot read $ACL_FROM"
grep -q -- '# --- end eximguard ---' <<<"$RCPT_BLOCK" \
  || die "no '# --- eximguard: count outgoing' ... '# --- end eximguard ---' block in $ACL_FROM"
RCPT_BLOCK=${RCPT_BLOCK//"@GUARD_SO@"/EG_DLFUNC_SO}
RCPT_BLOCK=${RCPT_BLOCK//EXIMGUARD_SO/EG_DLFUNC_SO}
RCPT_BLOCK=${RCPT_BLOCK//"@RCPT_FN@"/EG_DLFUNC_FN}
RCPT_BLOCK=${RCPT_BLOCK//"{eximguard_rcpt}"/"{EG_DLFUNC_FN}"}
RCPT_BLOCK=${RCPT_BLOCK//"@SEGMENT@"/$SEGMENT}
RCPT_BLOCK=${RCPT_BLOCK//EXIMGUARD_SEGMENT/$SEGMENT}
grep -q -- '${dlfunc{EG_DLFUNC_SO}{EG_DLFUNC_FN}{'"$SEGMENT"'}' <<<"$RCPT_BLOCK" \
  || die "the eximguard block of $ACL_FROM does not call \${dlfunc{SO}{eximguard_rcpt}{SEGMENT}...}"

render() {  # variant -> config path
  local v=$1 dir=$WORK/$1 defs
  case $v in
    a) defs="# (a) no limiter" ;;
    b) defs="EG_DLFUNC_SO = $WORK/lib/noop_dlfunc.so"$'\n'"EG_DLFUNC_FN = eximguard_noop" ;;
    c) defs="EG_DLFUNC_SO = $WORK/lib/eximguard.so"$'\n'"EG_DLFUNC_FN = eximguard_rcpt" ;;
    d) defs="EG_RATELIMIT = yes" ;;
  esac
  mkdir -m 0755 "$dir"
  install -d -m 0750 -o "$EXIM_USER" -g "$EXIM_GROUP" "$dir/spool" "$dir/log"
  local line out=$dir/exim.conf
  while IFS= read -r line || [[ -n $line ]]; do
    case $line in
      "@VARIANT_DEFS@") printf '%s\n' "$defs"; continue ;;
      "@EG_RCPT_BLOCK@") printf '%s\n' "$RCPT_BLOCK"; continue ;;
      "#"*) printf '%s\n' "$line"; continue ;;
    esac
    line=${line//@WORKDIR@/$dir}
    line=${line//@EXIM_USER@/$EXIM_USER}
    line=${line//@EXIM_GROUP@/$EXIM_GROUP}
    line=${line//@SEGMENT@/$SEGMENT}
    line=${line//@AUTH_PASSWORD@/$PASSWORD}
    printf '%s\n' "$line"
  done <"$ROOT/bench/exim-bench.conf.in" >"$out"
  chmod 0644 "$out"
  if grep -v '^[[:space:]]*#' "$out" | grep -q '@[A-Z_]*@'; then die "unrendered placeholder in $out"; fi
  timeout 20 "$EXIM" -C "$out" -bV >"$dir/bV.out" 2>&1 || { cat "$dir/bV.out" >&2; die "Exim refuses $out"; }
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_daemon() {
  local v=$1 conf=$WORK/$1/exim.conf port
  for _ in 1 2 3 4 5; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    listening "$port" && continue
    "$EXIM" -C "$conf" -bdf -oX "$port" -oP "$WORK/$v/daemon.pid" >"$WORK/$v/daemon.out" 2>&1 &
    DAEMON_PID[$v]=$!
    for _ in $(seq 100); do
      if listening "$port"; then PORT[$v]=$port; return 0; fi
      kill -0 "${DAEMON_PID[$v]}" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "${DAEMON_PID[$v]}" 2>/dev/null || true
    wait "${DAEMON_PID[$v]}" 2>/dev/null || true
    unset 'DAEMON_PID[$v]'
  done
  cat "$WORK/$v/daemon.out" "$WORK/$v/log/paniclog" 2>/dev/null >&2 || true
  die "Exim daemon ($v) did not start"
}

for v in "${VARIANTS[@]}"; do
  render "$v"
  start_daemon "$v"
done
log "daemons up: a:${PORT[a]} b:${PORT[b]} c:${PORT[c]} d:${PORT[d]}; sandbox $WORK; segment $SEGMENT"

# ---------------------------------------------------------------- the runs

declare -A RESULTS=()
GUARD_CALLS=0

burst() {  # variant rcpts -> prints µs per recipient
  local v=$1 n=$2 out
  local tmo=$(( 30 + n / 200 ))
  out=$(timeout $(( tmo + 10 )) "$BURST" --port "${PORT[$v]}" --user "$ACCOUNT" \
          --password "$PASSWORD" --rcpts "$n" --timeout "$tmo") || {
    log "variant $v: the session failed: $out"
    cat "$WORK/$v/log/paniclog" "$WORK/$v/log/rejectlog" 2>/dev/null | tail -5 >&2 || true
    return 1
  }
  sed -n 's/.*"us_per_rcpt":\([0-9.]*\).*/\1/p' <<<"$out"
}

check_guard() {
  local stats ok fo
  stats=$(guard_stats) || die "cannot read the guard's statistics"
  read -r ok fo <<<"$stats"
  (( fo == 0 )) || die "the guard failed open $fo times: (c) did not measure the guard"
  (( ok == GUARD_CALLS )) \
    || die "the guard answered ok $ok times, expected $GUARD_CALLS: (c) did not measure the guard"
  log "guard verdicts: ok $ok of $GUARD_CALLS, fail-open $fo"
}

# How many RCPTs (d)'s next session gets: what fits the rest of its budget over the runs left, at
# the slowest per-recipient cost seen so far; at most RCPTS, at least 200, a multiple of 100.
D_SPENT_US=0
D_SLOWEST_US=0
d_session_size() {  # runs_left
  awk -v b="$D_BUDGET" -v spent="$D_SPENT_US" -v runs="$1" -v us="$D_SLOWEST_US" -v max="$RCPTS" \
    'BEGIN {
      left = b * 1e6 - spent
      n = (us > 0) ? int(left / (runs * us) / 100) * 100 : max
      if (n > max) n = max
      if (n < 200) n = (max < 200) ? max : 200
      print n }'
}
d_account() {  # us_per_rcpt rcpts
  D_SPENT_US=$(awk -v s="$D_SPENT_US" -v us="$1" -v n="$2" 'BEGIN { printf "%.0f", s + us * n }')
  D_SLOWEST_US=$(awk -v a="$D_SLOWEST_US" -v b="$1" 'BEGIN { print (b > a) ? b : a }')
}

# Warm-up: one unmeasured session per variant (page cache, hints DB created, .so loaded once).
# (d)'s also calibrates how many RCPTs its measured sessions get.
declare -A SESSION=([a]=$RCPTS [b]=$RCPTS [c]=$RCPTS [d]=$RCPTS)
D_PROBE=200
(( WARMUP > 0 && WARMUP < D_PROBE )) && D_PROBE=$WARMUP
for v in "${VARIANTS[@]}"; do
  n=$WARMUP
  [[ $v == d ]] && n=$D_PROBE
  (( n > 0 )) || continue
  us=$(burst "$v" "$n") || die "warm-up of ($v) failed"
  if [[ $v == c ]]; then GUARD_CALLS=$(( GUARD_CALLS + n )); fi
  if [[ $v == d ]]; then D_SLOWEST_US=$us; fi
done
check_guard
[[ -f $WORK/d/spool/db/ratelimit ]] || die "(d) wrote no ratelimit hints DB: ratelimit did not run"
D_SIZES=

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$SECONDS
for (( i = 1; i <= RUNS; i++ )); do
  line="run $i/$RUNS µs/rcpt:"
  for v in "${VARIANTS[@]}"; do
    if [[ $v == d ]]; then SESSION[d]=$(d_session_size $(( RUNS - i + 1 ))); fi
    us=$(burst "$v" "${SESSION[$v]}") || die "run $i of ($v) failed"
    if [[ $v == c ]]; then GUARD_CALLS=$(( GUARD_CALLS + SESSION[c] )); fi
    if [[ $v == d ]]; then d_account "$us" "${SESSION[d]}"; D_SIZES+="${SESSION[d]} "; fi
    RESULTS[$v]+="$us "
    line+=" $v=$us"
  done
  log "$line"
done
check_guard

# ---------------------------------------------------------------- the table

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
declare -A MED=()
for v in "${VARIANTS[@]}"; do MED[$v]=$(median <<<"${RESULTS[$v]}"); done

declare -A NAME=(
  [a]="(a) no limiter"
  [b]="(b) \${dlfunc} noop, same ACL"
  [c]="(c) eximguard_rcpt"
  [d]="(d) ratelimit per_rcpt (hints DB)"
)
EXIM_VERSION=$("$EXIM" -bV -C "$WORK/a/exim.conf" 2>/dev/null | sed -n '1s/^Exim version \([^ ]*\).*/\1/p')
echo
echo "Whole-Exim benchmark: Exim $EXIM_VERSION, $(nproc) CPUs, $(uname -r)"
echo "one pipelined session of $RCPTS RCPTs per run, $RUNS runs per variant (interleaved), medians"
if [[ -n ${D_SIZES//"$RCPTS "/} ]]; then
  echo "(d) sessions had ${D_SIZES% } RCPTs (--d-budget ${D_BUDGET}s: Exim's ratelimit fsyncs at every RCPT)"
fi
echo "load average before: $LOAD_BEFORE; sandbox (spool, hints DB) on $(stat -f -c %T "$WORK")"
echo "(b)/(c) ACL block from ${ACL_FROM#"$ROOT"/}"
echo
printf '%-36s %10s %12s   %s\n' "variant" "µs/rcpt" "added vs a" "runs (µs/rcpt)"
for v in "${VARIANTS[@]}"; do
  if [[ $v == a ]]; then added="-"; else added=$(awk -v x="${MED[$v]}" -v a="${MED[a]}" 'BEGIN{printf "%.3f", x-a}'); fi
  printf '%-36s %10.3f %12s   %s\n' "${NAME[$v]}" "${MED[$v]}" "$added" "${RESULTS[$v]% }"
done
echo
MISSED=0
ratio() {  # label num_variant target comparison
  local label=$1 num=$2 den=$3 target=$4 cmp=$5 r verdict
  r=$(awk -v n="${MED[$num]}" -v d="${MED[$den]}" -v a="${MED[a]}" \
        'BEGIN{ if (d-a <= 0) print "inf"; else printf "%.2f", (n-a)/(d-a) }')
  if awk -v r="$r" -v t="$target" -v c="$cmp" \
       'BEGIN{ if (r=="inf") exit(c=="ge"?0:1); exit((c=="le") ? !(r<=t) : !(r>=t)) }'; then
    verdict=PASS
  else
    verdict=MISS; MISSED=1
  fi
  printf '%-36s %10s   target %s %s   %s\n' "$label" "$r" "$( [[ $cmp == le ]] && echo '<=' || echo '>=' )" "$target" "$verdict"
}
ratio "(c-a)/(b-a)  guard vs any dlfunc" c b 1.25 le
ratio "(d-a)/(c-a)  ratelimit vs guard" d c 40 ge
echo
echo "measured in $(( SECONDS - START ))s; guard verdicts: $GUARD_CALLS ok, 0 fail-open; log_selector = -all"
(( STRICT && MISSED )) && exit 3
exit 0

#!/usr/bin/env bash
# demo.sh - shows eximguard at work in a real Exim, on this machine, sandboxed: the inline guard,
# the sidecar daemon, a notice, `why` and the undo.
#
# Installs what it needs (Debian packages), builds, then under a temp dir (nothing in /etc is
# touched, the system Exim is not used): creates the shared table with `eximguard run`, starts
# a webhook receiver on loopback (standing in for the admins' chat), the daemon
# (`eximguard start`) and a real Exim daemon on 127.0.0.1:$DEMO_PORT (default 2525) with the
# guard in its ACLs, and sends
#   1. a 100-recipient burst from one authenticated account (limit 8/minute): 8 accepted, the
#      rest deferred with 451 4.7.1 (the client keeps them and retries later: nothing is lost).
#      The daemon sees the guard refusing the account (the table's own counters: trusted
#      evidence) within a second or two, records a `throttled` incident, blocks the account (the
#      demo's config adds `block` to that rule) and sends a notice to the receiver; `why`
#      shows the evidence and the undo, and the undo lifts the block;
#   2. 10 messages from a "PHP script" directory via sendmail -t (limit 5/minute per script
#      directory): 5 queued, 5 frozen in the queue for the admin (nothing is lost either).
# Prints each step and a summary; exits 1 if a step did not do what it says (scripts/test.sh
# runs it). Needs root (it creates the unprivileged user `egdemo` that the local "script" runs
# as). DEMO_KEEP=1 keeps the temp dir. Uses build/ as it is when it exists (scripts/test.sh
# built it), else configures it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${DEMO_PORT:-2525}
[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (it starts Exim and creates a demo user)" >&2; exit 1; }

scripts/install-deps.sh
echo "== building"
[[ -f build/CMakeCache.txt ]] || cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target eximguard eximguard_so webhook_receiver >/dev/null
eg=build/sidecar/eximguard
failed=0
check() {  # check WHAT COMMAND...: prints ok/FAILED for WHAT
  local what=$1
  shift
  if "$@"; then echo "   ok: $what"; else echo "   FAILED: $what"; failed=1; fi
}
wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local n=$(($1 * 10))
  shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}

user=egdemo
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$user"
group=$(id -gn "$user")
work=$(mktemp -d /tmp/eximguard-demo.XXXXXX)
segment=/eximguard-demo-$$
exim=$(command -v exim4 || command -v exim)
cleanup() {
  [[ -f $work/exim.pid ]] && kill "$(cat "$work/exim.pid")" 2>/dev/null || true
  [[ -n ${daemon_pid:-} ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  [[ -n ${receiver_pid:-} ]] && kill "$receiver_pid" 2>/dev/null || true
  rm -f "/dev/shm${segment}"
  if [[ -n ${DEMO_KEEP:-} ]]; then echo "(kept $work)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
chmod 0755 "$work"
mkdir -p "$work/spool" "$work/log" "$work/state" "$work/home/$user/public_html/wp-content/plugins/contact-form"
chown "$user:$group" "$work/spool" "$work/log"
chown -R "$user:$group" "$work/home/$user"
install -m 0644 build/exim-dlfunc/eximguard.so "$work/eximguard.so"

echo "== a webhook receiver on loopback (stands in for the admins' chat)"
build/tests/fakes/webhook_receiver "$work/receiver.port" "$work/notices.txt" &
receiver_pid=$!
wait_for 10 test -s "$work/receiver.port"
wport=$(cat "$work/receiver.port")
touch "$work/notices.txt"
echo "   listening on 127.0.0.1:$wport"

# The sidecar's config: the issue's default limits; `throttled` (a key the guard keeps refusing)
# also blocks here, so the demo has a block to show and undo (by default it only notifies).
cat >"$work/eximguard.json" <<EOF
{ "shm_name": "$segment", "state_dir": "$work/state", "exim_log": "$work/log/mainlog",
  "exim_group": "$group", "local_domains_file": "",
  "limits": { "sender": {"per_minute": 8, "per_hour": 100},
              "cwd":    {"per_minute": 5, "per_hour": 60},
              "uid":    {"per_minute": 20, "per_hour": 300} },
  "whitelist": ["postmaster@example.com"],
  "notify": { "webhook_url": "http://127.0.0.1:$wport/eximguard-demo" },
  "actions": { "rules": { "throttled": ["block", "command"] } } }
EOF
chmod 0600 "$work/eximguard.json"
echo "== eximguard run: create the shared table, publish the limits"
$eg run --config "$work/eximguard.json"

sed -e "s|@WORKDIR@|$work|g" -e "s|@EXIM_USER@|$user|g" -e "s|@EXIM_GROUP@|$group|g" \
    -e "s|@GUARD_SO@|$work/eximguard.so|g" -e "s|@RCPT_FN@|eximguard_rcpt|g" \
    -e "s|@LOCAL_FN@|eximguard_local|g" -e "s|@SEGMENT@|$segment|g" \
    -e "s|@AUTH_PASSWORD@|demo-password|g" exim-config/test/exim-test.conf.in >"$work/exim.conf"

echo "== starting Exim on 127.0.0.1:$port (config $work/exim.conf)"
"$exim" -C "$work/exim.conf" -bdf -oX "$port" -oP "$work/exim.pid" 2>"$work/daemon.err" &
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

echo "== the sidecar daemon: eximguard start (its log: $work/daemon.log)"
$eg start --config "$work/eximguard.json" 2>"$work/daemon.log" &
daemon_pid=$!
if ! wait_for 20 test -s "$work/state/status.json"; then
  echo "demo: the daemon did not start"; cat "$work/daemon.log"; exit 1
fi
sleep 1.5  # its first look at the table is the baseline

echo "== 1. a compromised mailbox sends to 100 recipients in one go"
rcpts=$(seq -f "victim%g@example.net" 1 100 | paste -sd, -)
swaks --server "127.0.0.1:$port" --auth PLAIN --auth-user shop@example.com \
  --auth-password demo-password --from shop@example.com --to "$rcpts" \
  --header "Subject: cheap pills" --timeout 20 >"$work/swaks.log" 2>&1 || true
# swaks shows each reply line; the last line of a reply has a space after the code.
accepted=$(grep -cE '^<- +250 Accepted' "$work/swaks.log" || true)
deferred=$(grep -cE '^<\*\* +451 ' "$work/swaks.log" || true)
echo "   accepted: $accepted   deferred (451 4.7.1, client retries later): $deferred"
grep -m2 -E '^<\*\* +451' "$work/swaks.log" | sed 's/^/   first refusal: /' || true
check "8 accepted, 92 deferred inline" test "$accepted" -eq 8 -a "$deferred" -eq 92
blocked() { $eg list --config "$work/eximguard.json" | grep -q 'shop@example.com'; }
start_ns=$(date +%s%N)
wait_for 15 blocked || true
ms=$((($(date +%s%N) - start_ns) / 1000000))
echo "== the daemon saw the guard refusing it (the table's own counters), ${ms} ms after the burst:"
$eg incidents --config "$work/eximguard.json" | sed 's/^/   /'
check "a trusted incident recorded and the account blocked" blocked
wait_for 15 grep -q 'shop@example.com' "$work/notices.txt" || true
echo "== the notice the receiver got (its first 400 bytes):"
head -c 400 "$work/notices.txt" | sed 's/^/   /'
echo
check "a notice delivered to the receiver" grep -q 'shop@example.com' "$work/notices.txt"
echo "== eximguard why shop@example.com"
$eg why --config "$work/eximguard.json" shop@example.com >"$work/why.txt" || true
sed 's/^/   /' "$work/why.txt" | head -20
check "why shows the block and its undo" grep -q 'undo: eximguard unsuspend shop@example.com' "$work/why.txt"
echo "== the undo: eximguard unsuspend shop@example.com"
$eg unsuspend --config "$work/eximguard.json" shop@example.com | sed 's/^/   /' || true
unblocked() { ! blocked; }
check "the block is lifted" unblocked

echo "== 2. an exploited PHP script sends 10 messages through sendmail -t"
script_dir="$work/home/$user/public_html/wp-content/plugins/contact-form"
queued_before=$("$exim" -C "$work/exim.conf" -bpc)
for i in $(seq 1 10); do
  printf 'To: target%s@example.org\nFrom: wordpress@example.com\nSubject: you won\n\nclick here\n' "$i" |
    (cd "$script_dir" && runuser -u "$user" -- "$exim" -C "$work/exim.conf" -oi -t)
done
local_total=$(( $("$exim" -C "$work/exim.conf" -bpc) - queued_before ))
frozen=$("$exim" -C "$work/exim.conf" -bp | grep -c 'frozen' || true)
echo "   new messages in the queue: $local_total, of which frozen by eximguard: $frozen"
echo "   (deliver one now: exim -M ID; delete: exim -Mrm ID)"
check "5 queued, 5 held" test "$local_total" -eq 10 -a "$frozen" -eq 5
grep 'eximguard: held' "$work/log/mainlog" | head -3 | sed 's/^/   mainlog: /' || true

echo "== eximguard top"
$eg top --config "$work/eximguard.json" -n 10
echo
echo "Summary: SMTP burst $accepted accepted / $deferred deferred, then incident, block, notice, why"
echo "and undo; local script burst $((local_total - frozen)) queued / $frozen held."
if ((failed)); then echo "demo: a step FAILED (see above)"; exit 1; fi
echo "demo: every step did what it says"

#!/usr/bin/env bash
# demo.sh - shows eximguard stopping a spam burst in a real Exim, on this machine, sandboxed.
#
# Installs what it needs (Debian packages), builds, then under a temp dir (nothing in /etc is
# touched, the system Exim is not used): creates the shared table with `eximguard run`, starts a
# real Exim daemon on 127.0.0.1:$DEMO_PORT (default 2525) with the guard in its ACLs, and sends
#   1. a 100-recipient burst from one authenticated account (limit 8/minute): 8 accepted, the
#      rest deferred with 451 4.7.1 (the client keeps them and retries later: nothing is lost);
#   2. 10 messages from a "PHP script" directory via sendmail -t (limit 5/minute per script
#      directory): 5 queued, 5 frozen in the queue for the admin (nothing is lost either).
# Then prints the counts, the guard's log lines and `eximguard top`. Needs root (it creates the
# unprivileged user `egdemo` that the local "script" runs as). DEMO_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${DEMO_PORT:-2525}
[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (it starts Exim and creates a demo user)" >&2; exit 1; }

scripts/install-deps.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target eximguard eximguard_so >/dev/null

user=egdemo
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$user"
group=$(id -gn "$user")
work=$(mktemp -d /tmp/eximguard-demo.XXXXXX)
segment=/eximguard-demo-$$
exim=$(command -v exim4 || command -v exim)
cleanup() {
  [[ -f $work/exim.pid ]] && kill "$(cat "$work/exim.pid")" 2>/dev/null || true
  rm -f "/dev/shm${segment}"
  if [[ -n ${DEMO_KEEP:-} ]]; then echo "(kept $work)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
chmod 0755 "$work"
mkdir -p "$work/spool" "$work/log" "$work/state" "$work/home/$user/public_html/wp-content/plugins/contact-form"
chown "$user:$group" "$work/spool" "$work/log"
chown -R "$user:$group" "$work/home/$user"
install -m 0644 build/exim-dlfunc/eximguard.so "$work/eximguard.so"

# The sidecar's config: the issue's default limits.
cat >"$work/eximguard.json" <<EOF
{ "shm_name": "$segment", "state_dir": "$work/state", "exim_log": "$work/log/mainlog",
  "exim_group": "$group",
  "limits": { "sender": {"per_minute": 8, "per_hour": 100},
              "cwd":    {"per_minute": 5, "per_hour": 60},
              "uid":    {"per_minute": 20, "per_hour": 300} },
  "whitelist": ["postmaster@example.com"] }
EOF
chmod 0600 "$work/eximguard.json"
echo "== eximguard run: create the shared table, publish the limits"
build/sidecar/eximguard run --config "$work/eximguard.json"

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
echo "   (release one: exim -Mt ID; delete: exim -Mrm ID)"
grep 'eximguard: held' "$work/log/mainlog" | head -3 | sed 's/^/   mainlog: /' || true

echo "== eximguard top"
build/sidecar/eximguard top --config "$work/eximguard.json" -n 10
echo
echo "Summary: SMTP burst $accepted accepted / $deferred deferred; local script burst $((local_total - frozen)) queued / $frozen held."

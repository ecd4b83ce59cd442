#!/usr/bin/env bash
# shellcheck disable=SC2016  # wait_for evaluates its argument later, on purpose
# install_test.sh - packaging/install.sh, packaging/eximguard.init and packaging/uninstall.sh on
# fake hosts in temporary roots (install.sh --root): the platform's config (Debian, cPanel),
# stripped binaries that still export the guard's entry points, the systemd unit or the init
# script; the init script starting, reloading and stopping the real daemon by its pid file; the
# uninstall stopping what was started (also a `nohup` start found by its follow lock) and naming
# the Exim snippets left, with the commands that remove them.
#
#   tests/packaging/install_test.sh SOURCE_DIR BUILD_DIR
#
# Needs root (as the sidecar tests: the daemon's table and state). Nothing outside its temporary
# directories is touched but a uniquely named shared table in /dev/shm, removed at the end.
set -euo pipefail
src=$(cd "${1:?SOURCE_DIR}" && pwd)
build=$(cd "${2:?BUILD_DIR}" && pwd)
work=$(mktemp -d /tmp/eximguard-install-test-XXXXXX)
segment=/eg-install-test-$$
cleanup() {
  cat "$work"/*.pid 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "/dev/shm$segment"
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# expect_in TEXT NEEDLE: TEXT contains NEEDLE.
expect_in() { [[ $1 == *"$2"* ]] || fail "expected \"$2\" in:"$'\n'"$1"; }
expect_not_in() { [[ $1 != *"$2"* ]] || fail "did not expect \"$2\" in:"$'\n'"$1"; }
expect_file() { [[ -e $1 ]] || fail "$1 missing"; }
expect_no_file() { [[ ! -e $1 ]] || fail "$1 still there"; }
expect_mode() { [[ $(stat -c %a "$1") == "$2" ]] || fail "$1 has mode $(stat -c %a "$1"), not $2"; }
# The value of KEY in the config shown by `eximguard config show`.
shown() { "$build/sidecar/eximguard" config show --config "$1" | grep -m1 "\"$2\":" | sed 's/^ *//; s/,$//'; }
wait_for() {
  for _ in $(seq 100); do
    if eval "$1"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---- Debian without systemd ---------------------------------------------------------------
deb=$work/debian
mkdir -p "$deb/etc" "$deb/var/log/exim4"
echo 12.8 >"$deb/etc/debian_version"
out=$("$src/packaging/install.sh" --root "$deb" "$build")
expect_in "$out" "eximguard installed on Debian (no systemd: SysV init script)"
expect_in "$out" "wrote /etc/eximguard/eximguard.json for Debian (exim_log /var/log/exim4/mainlog, exim_group Debian-exim)"
expect_in "$out" "nothing started"
expect_in "$out" "On the host it would be started with: /etc/init.d/eximguard restart"
expect_mode "$deb/usr/sbin/eximguard" 755
expect_mode "$deb/usr/lib/eximguard/eximguard.so" 644
expect_mode "$deb/etc/eximguard" 700
expect_mode "$deb/etc/eximguard/eximguard.json" 600
expect_mode "$deb/etc/init.d/eximguard" 755
expect_file "$deb/etc/logrotate.d/eximguard"
expect_no_file "$deb/etc/systemd/system/eximguard.service"
expect_file "$deb/usr/share/eximguard/exim-config/debian/main/89_eximguard_log_selector"
expect_file "$deb/usr/share/eximguard/exim-config/cpanel/custom_begin_recipient"
expect_no_file "$deb/usr/share/eximguard/exim-config/test"
# Stripped, smaller than built, and the guard still exports what Exim's ${dlfunc} looks up.
for f in usr/sbin/eximguard usr/lib/eximguard/eximguard.so; do
  if readelf -S "$deb/$f" | grep -q -E '\.symtab|\.debug_info'; then fail "$f is not stripped"; fi
done
built=$(stat -c %s "$build/sidecar/eximguard")
installed=$(stat -c %s "$deb/usr/sbin/eximguard")
((installed < built)) || fail "installed eximguard ($installed B) is not smaller than built ($built B)"
exports=$(nm -D --defined-only "$deb/usr/lib/eximguard/eximguard.so")
expect_in "$exports" " eximguard_rcpt"
expect_in "$exports" " eximguard_local"
expect_in "$out" "/usr/sbin/eximguard"
expect_in "$out" "MiB (stripped)"
[[ $(shown "$deb/etc/eximguard/eximguard.json" exim_log) == '"exim_log": "/var/log/exim4/mainlog"' ]] ||
  fail "exim_log: $(shown "$deb/etc/eximguard/eximguard.json" exim_log)"
[[ $(shown "$deb/etc/eximguard/eximguard.json" exim_group) == '"exim_group": "Debian-exim"' ]] ||
  fail "exim_group: $(shown "$deb/etc/eximguard/eximguard.json" exim_group)"
[[ $(shown "$deb/etc/eximguard/eximguard.json" local_domains_from_exim) == '"local_domains_from_exim": true' ]] ||
  fail "local_domains_from_exim: $(shown "$deb/etc/eximguard/eximguard.json" local_domains_from_exim)"

# An existing config is kept.
echo '{"shm_name": "/kept"}' >"$deb/etc/eximguard/eximguard.json"
out=$("$src/packaging/install.sh" --root "$deb" "$build")
expect_in "$out" "kept the existing /etc/eximguard/eximguard.json"
[[ $(cat "$deb/etc/eximguard/eximguard.json") == '{"shm_name": "/kept"}' ]] || fail "config overwritten"

# ---- the init script runs the real daemon --------------------------------------------------
# A config the daemon can run with here: everything inside the fake root.
mainlog=$deb/var/log/exim4/mainlog
: >"$mainlog"
cat >"$deb/etc/eximguard/eximguard.json" <<EOF
{
  "shm_name": "$segment",
  "state_dir": "$deb/var/lib/eximguard",
  "exim_log": "$mainlog",
  "exim_group": "$(id -gn)",
  "capacity": 1024,
  "policy_capacity": 64,
  "local_domains_file": ""
}
EOF
chmod 0600 "$deb/etc/eximguard/eximguard.json"
export DAEMON=$deb/usr/sbin/eximguard CONFIG=$deb/etc/eximguard/eximguard.json
export PIDFILE=$deb/run/eximguard.pid LOGFILE=$deb/var/log/eximguard.log DEFAULTS=/nonexistent
init=$deb/etc/init.d/eximguard
set +e
status_out=$("$init" status)
status_rc=$?
set -e
[[ $status_rc == 3 ]] || fail "status before start: exit $status_rc ($status_out)"
out=$("$init" start)
expect_in "$out" "eximguard started (pid "
pid=$(cat "$PIDFILE")
echo "$pid" >"$work/daemon.pid"
[[ $(readlink "/proc/$pid/exe") == "$DAEMON" ]] || fail "pid $pid runs $(readlink "/proc/$pid/exe")"
[[ -e /dev/shm$segment ]] || fail "the table was not created before the daemon started"
expect_in "$("$init" status)" "eximguard is running (pid $pid)"
expect_in "$("$init" start)" "eximguard is already running (pid $pid)"
"$init" reload >/dev/null
wait_for 'grep -q "reloaded $CONFIG" "$LOGFILE"' || fail "no reload in $LOGFILE: $(cat "$LOGFILE")"
out=$("$init" stop)
expect_in "$out" "eximguard stopped (pid $pid)"
[[ ! -d /proc/$pid ]] || fail "pid $pid still runs after stop"
expect_no_file "$PIDFILE"
set +e
"$init" status >/dev/null
status_rc=$?
set -e
[[ $status_rc == 3 ]] || fail "status after stop: exit $status_rc"
out=$("$init" start)
pid=$(cat "$PIDFILE")
echo "$pid" >"$work/daemon.pid"

# ---- uninstall stops it, removes the files, names the Exim snippets ------------------------
mkdir -p "$deb/etc/exim4/conf.d/main" "$deb/etc/exim4/conf.d/acl"
cp "$src/exim-config/debian/main/00_eximguard_macros" "$src/exim-config/debian/main/89_eximguard_log_selector" \
  "$deb/etc/exim4/conf.d/main/"
cp "$src/exim-config/debian/acl/25_eximguard_acl" "$deb/etc/exim4/conf.d/acl/"
out=$("$src/packaging/uninstall.sh" --root "$deb")
expect_in "$out" "stopped eximguard (pid $pid, found in $PIDFILE)"
[[ ! -d /proc/$pid ]] || fail "pid $pid still runs after uninstall"
for f in usr/sbin/eximguard usr/lib/eximguard usr/share/eximguard etc/init.d/eximguard etc/logrotate.d/eximguard; do
  expect_no_file "$deb/$f"
done
[[ ! -e /dev/shm$segment ]] || fail "the table is left"
expect_file "$deb/etc/eximguard/eximguard.json"
expect_in "$out" "kept /etc/eximguard"
expect_in "$out" "  /etc/exim4/conf.d/main/00_eximguard_macros"
expect_in "$out" "  /etc/exim4/conf.d/acl/25_eximguard_acl"
expect_in "$out" "rm /etc/exim4/conf.d/main/00_eximguard_macros /etc/exim4/conf.d/main/89_eximguard_log_selector /etc/exim4/conf.d/acl/25_eximguard_acl && update-exim4.conf && /etc/init.d/exim4 reload"

# A daemon started by hand (nohup, no pid file) is found by its follow lock; --purge.
"$src/packaging/install.sh" --root "$deb" "$build" >/dev/null
setsid "$DAEMON" start --config "$CONFIG" >>"$LOGFILE" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$work/daemon.pid"
wait_for '[[ -e $deb/var/lib/eximguard/status.json ]]' || fail "the daemon did not start: $(tail -n 3 "$LOGFILE")"
out=$("$src/packaging/uninstall.sh" --root "$deb" --purge)
expect_in "$out" "stopped eximguard (pid $pid, found in $deb/var/lib/eximguard/follow.lock)"
wait_for '[[ ! -d /proc/$pid ]]' || fail "pid $pid still runs after uninstall"
expect_no_file "$deb/etc/eximguard"
expect_no_file "$deb/var/lib/eximguard"
expect_not_in "$out" "kept /etc/eximguard"
unset DAEMON CONFIG PIDFILE LOGFILE DEFAULTS

# ---- cPanel with systemd -------------------------------------------------------------------
cp=$work/cpanel
mkdir -p "$cp/usr/local/cpanel" "$cp/run/systemd/system"
out=$("$src/packaging/install.sh" --root "$cp" "$build")
expect_in "$out" "eximguard installed on cPanel (systemd)"
expect_in "$out" "exim_log /var/log/exim_mainlog, exim_group mail"
expect_in "$out" "On the host it would be started with: systemctl enable eximguard && systemctl restart eximguard"
expect_file "$cp/etc/systemd/system/eximguard.service"
expect_no_file "$cp/etc/init.d/eximguard"
[[ $(shown "$cp/etc/eximguard/eximguard.json" exim_group) == '"exim_group": "mail"' ]] ||
  fail "cPanel exim_group: $(shown "$cp/etc/eximguard/eximguard.json" exim_group)"
[[ $(shown "$cp/etc/eximguard/eximguard.json" local_domains_from_exim) == '"local_domains_from_exim": false' ]] ||
  fail "cPanel local_domains_from_exim"
block=$cp/usr/local/cpanel/etc/exim/acls/ACL_RECIPIENT_BLOCK
mkdir -p "$block"
cp "$src/exim-config/cpanel/custom_begin_recipient" "$block/"
out=$("$src/packaging/uninstall.sh" --root "$cp")
expect_no_file "$cp/etc/systemd/system/eximguard.service"
expect_in "$out" "/usr/local/cpanel/etc/exim/acls/ACL_RECIPIENT_BLOCK/custom_begin_recipient"
expect_in "$out" "Exim Configuration Manager > Advanced Editor"
expect_in "$out" "/scripts/buildeximconf && /scripts/restartsrv_exim"

# ---- usage ---------------------------------------------------------------------------------
set +e
"$src/packaging/install.sh" --bogus >/dev/null 2>&1
[[ $? == 2 ]] || fail "install.sh --bogus: not a usage error"
"$src/packaging/install.sh" --root "$work" "$work/no-build" >/dev/null 2>&1
[[ $? == 1 ]] || fail "install.sh without a build: not an error"
set -e

if ((failures > 0)); then
  echo "$failures failures" >&2
  exit 1
fi
echo "install_test: all checks passed"

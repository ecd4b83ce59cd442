#!/usr/bin/env bash
# uninstall.sh - removes what install.sh installed, after stopping the daemon it started.
#
#   packaging/uninstall.sh [--root DIR] [--purge]
#
# 1. Stops the daemon: systemd's unit (disabled too) or the init script (removed from the
#    runlevels), and then any eximguard still running from this installation, found by its pid
#    file (/run/eximguard.pid) or by the follow lock in state_dir (a `nohup eximguard start`):
#    SIGTERM, then SIGKILL after 15 s. Nothing is left running from a deleted binary.
# 2. Removes the binaries, the snippets in /usr/share/eximguard, the unit, the init script, the
#    logrotate file and the shared table (/dev/shm + shm_name; the guard then lets mail through).
#    /etc/eximguard and the state (state_dir) stay unless --purge is given.
# 3. Lists the Exim snippets still in Exim's configuration, with the commands that remove them:
#    they skip the guard once its .so is gone, but they are eximguard's and should go too.
#
# --root DIR: the installation in DIR (install.sh --root DIR); no systemctl or update-rc.d is
# run, but a daemon started from DIR is stopped.
set -euo pipefail
root=""
purge=no
while (($#)); do
  case $1 in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --purge) purge=yes; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -n $root ]]; then
  root=$(cd "$root" && pwd)
elif [[ $(id -u) -ne 0 ]]; then
  echo "uninstall.sh: run as root" >&2
  exit 1
fi

config=$root/etc/eximguard/eximguard.json
# A string value of the config (written one key per line), or $2.
config_value() {
  local v=""
  [[ -r $config ]] && v=$(sed -n "s/^[[:space:]]*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" \
    "$config" | head -n 1)
  echo "${v:-$2}"
}
shm_name=$(config_value shm_name /eximguard)
state_dir=$(config_value state_dir /var/lib/eximguard)
binary=$root/usr/sbin/eximguard

# ---- 1. stop --------------------------------------------------------------------------------
if [[ -z $root && -d /run/systemd/system && -f /etc/systemd/system/eximguard.service ]]; then
  systemctl disable --now eximguard.service || true
  echo "stopped and disabled eximguard.service"
fi
if [[ -z $root && -x /etc/init.d/eximguard ]]; then
  /etc/init.d/eximguard stop || true
  if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d -f eximguard remove >/dev/null || true
  elif command -v chkconfig >/dev/null 2>&1; then
    chkconfig --del eximguard || true
  fi
fi
# Whatever still runs this installation's binary (also after it was deleted).
ours() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  [[ $exe == "$binary" || $exe == "$binary (deleted)" ]]
}
for source in "$root/run/eximguard.pid" "$state_dir/follow.lock"; do
  [[ -r $source ]] || continue
  pid=$(head -n 1 "$source" 2>/dev/null || true)
  if ! [[ $pid =~ ^[0-9]+$ ]] || ! ours "$pid"; then continue; fi
  kill -TERM "$pid"
  for _ in $(seq 150); do
    [[ -d /proc/$pid ]] || break
    sleep 0.1
  done
  if [[ -d /proc/$pid ]]; then
    kill -KILL "$pid"
    echo "eximguard (pid $pid) did not stop within 15 s: killed"
  else
    echo "stopped eximguard (pid $pid, found in $source)"
  fi
done
rm -f "$root/run/eximguard.pid"

# ---- 2. remove ------------------------------------------------------------------------------
removed=()
for f in /usr/sbin/eximguard /usr/lib/eximguard /usr/share/eximguard \
  /etc/systemd/system/eximguard.service /etc/init.d/eximguard /etc/logrotate.d/eximguard; do
  if [[ -e $root$f ]]; then
    rm -rf "$root$f"
    removed+=("$f")
  fi
done
if [[ -z $root && -d /run/systemd/system ]]; then systemctl daemon-reload || true; fi
if [[ -e /dev/shm$shm_name ]]; then
  rm -f "/dev/shm$shm_name"
  removed+=("the shared table /dev/shm$shm_name")
fi
if [[ $purge == yes ]]; then
  for f in /etc/eximguard "$state_dir" /var/log/eximguard.log; do
    [[ $f == /* ]] || continue
    target=$root$f
    [[ $f == "$state_dir" && -n $root && $state_dir == "$root"/* ]] && target=$state_dir
    if [[ -e $target ]]; then
      rm -rf "$target" "$target".[0-9]* 2>/dev/null || true
      removed+=("$f")
    fi
  done
fi
echo "eximguard removed:"
for f in "${removed[@]}"; do echo "  $f"; done
[[ $purge == yes ]] || echo "  (kept /etc/eximguard and $state_dir: uninstall.sh --purge removes them)"

# ---- 3. Exim's configuration ----------------------------------------------------------------
debian=()
for f in /etc/exim4/conf.d/main/00_eximguard_macros /etc/exim4/conf.d/main/89_eximguard_log_selector \
  /etc/exim4/conf.d/acl/25_eximguard_acl; do
  [[ -e $root$f ]] && debian+=("$f")
done
acls=/usr/local/cpanel/etc/exim/acls
cpanel=()
for f in $acls/ACL_RECIPIENT_BLOCK/custom_begin_recipient $acls/ACL_NOT_SMTP_BLOCK/custom_begin_not_smtp \
  $acls/ACL_PRE_RECIPIENT_BLOCK/custom_begin_pre_recipient; do
  [[ -f $root$f ]] && grep -q eximguard "$root$f" && cpanel+=("$f")
done
others=()
for f in /etc/exim4/exim4.conf.template /etc/exim4/exim4.conf.localmacros /etc/exim4/exim4.conf \
  /etc/exim4/conf.d/transport/30_exim4-config_remote_smtp \
  /etc/exim4/conf.d/transport/30_exim4-config_remote_smtp_smarthost \
  /etc/exim/exim.conf /etc/exim.conf.local /usr/exim/configure; do
  [[ -f $root$f ]] && grep -q -i eximguard "$root$f" && others+=("$f")
done
if ((${#debian[@]} + ${#cpanel[@]} + ${#others[@]} == 0)); then
  echo "No eximguard snippet found in Exim's configuration."
  exit 0
fi
echo
echo "Exim's configuration still has eximguard's snippets (they skip the guard now that its .so"
echo "is gone, so mail flows, but remove them):"
if ((${#debian[@]})); then
  if [[ -d $root/run/systemd/system ]]; then reload="systemctl reload exim4"; else reload="/etc/init.d/exim4 reload"; fi
  for f in "${debian[@]}"; do echo "  $f"; done
  echo "  remove them with:"
  echo "    rm ${debian[*]} && update-exim4.conf && $reload"
fi
if ((${#cpanel[@]})); then
  for f in "${cpanel[@]}"; do echo "  $f"; done
  echo "  remove them in WHM > Service Configuration > Exim Configuration Manager > Advanced Editor:"
  echo "  switch off (or empty) custom_begin_recipient and custom_begin_not_smtp, Save. From a shell:"
  printf '%s\n' "    rm ${cpanel[*]} && sed -i 's/^\(acl_custom_begin_[a-z_]*\)=1/\1=0/' /etc/exim.conf.localopts &&"
  echo "    /scripts/buildeximconf && /scripts/restartsrv_exim"
fi
for f in "${others[@]}"; do
  echo "  $f mentions eximguard: delete its '# --- eximguard' ... '# --- end eximguard ---' blocks"
  echo "    (and EXIMGUARD_* macros, MAIN_ACL_CHECK_RCPT / acl_not_smtp lines naming eximguard),"
  echo "    then restart Exim"
done

#!/usr/bin/env bash
# install.sh - installs a built eximguard on this machine (Debian/Ubuntu, cPanel/WHM, or another
# Linux with Exim), with a config for the platform, and starts the daemon the way this host
# runs services.
#
#   packaging/install.sh [--root DIR] [BUILD_DIR]      (default BUILD_DIR: ./build)
#
# Installs (stripped):
#   /usr/lib/eximguard/eximguard.so       the guard Exim loads with ${dlfunc}
#   /usr/sbin/eximguard                   the sidecar (daemon and CLI)
#   /usr/share/eximguard/exim-config/     the Exim snippets (README.md and `doctor` name them)
#   /etc/eximguard/eximguard.json         the config (0600), written for the platform; an
#                                         existing config is never overwritten
#   PID 1 is systemd (/run/systemd/system): /etc/systemd/system/eximguard.service, enabled and
#                                           (re)started
#   otherwise:                              /etc/init.d/eximguard (+ update-rc.d / chkconfig),
#                                           /etc/logrotate.d/eximguard, (re)started
# Platform: cPanel when /usr/local/cpanel exists (exim_log /var/log/exim_mainlog, exim_group
# mail); Debian when /etc/debian_version and /var/log/exim4 exist (exim_log
# /var/log/exim4/mainlog, exim_group Debian-exim, local_domains_from_exim); else Exim is asked
# (exim -bP log_file_path, exim_group).
#
# --root DIR installs into DIR instead of / (a staging tree, or a test): the platform is judged
# by DIR's files, the config names the real paths, and nothing is started or enabled (the
# command that would start it is printed).
#
# It does NOT edit Exim's configuration: add the ACL snippet from exim-config/ yourself (see
# README.md), so you decide when the guard goes live; then run `eximguard doctor`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=""
build=""
while (($#)); do
  case $1 in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
build=${build:-$here/build}
if [[ -n $root ]]; then
  root=$(cd "$root" && pwd)
elif [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: run as root (or stage into a directory with --root DIR)" >&2
  exit 1
fi
for f in "$build/exim-dlfunc/eximguard.so" "$build/sidecar/eximguard"; do
  [[ -f $f ]] || {
    echo "install.sh: $f missing: build first (cmake -S . -B build && cmake --build build)" >&2
    exit 1
  }
done

# ---- the platform ---------------------------------------------------------------------------
platform=other
if [[ -d $root/usr/local/cpanel ]]; then
  platform=cPanel
elif [[ -f $root/etc/debian_version && -d $root/var/log/exim4 ]]; then
  platform=Debian
fi
systemd=no
[[ -d $root/run/systemd/system ]] && systemd=yes

exim_log=/var/log/exim_mainlog
exim_group=""
from_exim=false
case $platform in
  cPanel) exim_group=mail ;;
  Debian)
    exim_log=/var/log/exim4/mainlog
    exim_group=Debian-exim
    from_exim=true
    ;;
  other)
    exim=$(command -v exim || command -v exim4 || true)
    if [[ -z $root && -n $exim ]]; then
      path=$("$exim" -bP log_file_path 2>/dev/null | sed -n 's/^log_file_path = //p' | tr ':' '\n' |
        sed -n 's/^ *\(\/[^ ]*\).*/\1/p' | head -n 1)
      [[ -n $path ]] && exim_log=${path/\%s/main}
      exim_group=$("$exim" -bP exim_group 2>/dev/null | sed -n 's/^exim_group = //p')
    fi
    ;;
esac

# ---- files ----------------------------------------------------------------------------------
installed=()
install -d -m 0755 "$root/usr/lib/eximguard" "$root/usr/sbin" "$root/usr/share/eximguard"
install -s -m 0644 "$build/exim-dlfunc/eximguard.so" "$root/usr/lib/eximguard/eximguard.so"
install -s -m 0755 "$build/sidecar/eximguard" "$root/usr/sbin/eximguard"
installed+=(/usr/sbin/eximguard /usr/lib/eximguard/eximguard.so)
rm -rf "$root/usr/share/eximguard/exim-config"
cp -R "$here/exim-config" "$root/usr/share/eximguard/exim-config"
rm -rf "$root/usr/share/eximguard/exim-config/test"  # the end-to-end tests' own config
chmod -R u=rwX,go=rX "$root/usr/share/eximguard/exim-config"
install -d -m 0700 "$root/etc/eximguard" "$root/var/lib/eximguard"

config=/etc/eximguard/eximguard.json
if [[ -e $root$config ]]; then
  config_note="kept the existing $config"
else
  # The packaged defaults with this platform's log, group and local domains.
  lines="  \"exim_log\": \"$exim_log\","
  [[ -n $exim_group ]] && lines+=$'\n'"  \"exim_group\": \"$exim_group\","
  [[ $from_exim == true ]] && lines+=$'\n'"  \"local_domains_from_exim\": true,"
  umask 077
  LINES_FOR_PLATFORM=$lines awk '/"exim_log":/ { print ENVIRON["LINES_FOR_PLATFORM"]; next }
    { print }' "$here/packaging/eximguard.json" >"$root$config.new"
  chmod 0600 "$root$config.new"
  mv "$root$config.new" "$root$config"
  umask 022
  config_note="wrote $config for $platform (exim_log $exim_log${exim_group:+, exim_group $exim_group})"
fi

if [[ $systemd == yes ]]; then
  install -d -m 0755 "$root/etc/systemd/system"
  install -m 0644 "$here/packaging/eximguard.service" "$root/etc/systemd/system/eximguard.service"
  installed+=(/etc/systemd/system/eximguard.service)
  start_command="systemctl enable eximguard && systemctl restart eximguard"
else
  install -d -m 0755 "$root/etc/init.d" "$root/etc/logrotate.d"
  install -m 0755 "$here/packaging/eximguard.init" "$root/etc/init.d/eximguard"
  install -m 0644 "$here/packaging/eximguard.logrotate" "$root/etc/logrotate.d/eximguard"
  installed+=(/etc/init.d/eximguard /etc/logrotate.d/eximguard)
  start_command="/etc/init.d/eximguard restart"
fi

echo "eximguard installed on $platform ($( [[ $systemd == yes ]] && echo systemd || echo 'no systemd: SysV init script')):"
for f in "${installed[@]}"; do
  case $f in
    /usr/*) printf '  %-36s %8s (stripped)\n' "$f" "$(numfmt --to=iec-i --suffix=B "$(stat -c %s "$root$f")")" ;;
    *) printf '  %s\n' "$f" ;;
  esac
done
echo "  /usr/share/eximguard/exim-config/ (the Exim snippets)"
echo "  $config_note"

# ---- start ----------------------------------------------------------------------------------
if [[ -n $root ]]; then
  echo "staged in $root: nothing started (a --root install never starts anything)."
  echo "On the host it would be started with: $start_command"
  exit 0
fi
if ! /usr/sbin/eximguard config check --config "$config"; then
  echo "install.sh: the config has the problems above: fix them, then: $start_command" >&2
  exit 1
fi
if [[ $systemd == yes ]]; then
  systemctl daemon-reload
  systemctl enable eximguard.service
  systemctl restart eximguard.service  # restart: an upgrade must not leave the old binary running
  echo "eximguard started with systemd (systemctl status eximguard; journalctl -u eximguard)"
else
  if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d eximguard defaults >/dev/null
  elif command -v chkconfig >/dev/null 2>&1; then
    chkconfig --add eximguard
  fi
  /etc/init.d/eximguard restart
  echo "PID 1 is not systemd: eximguard runs from /etc/init.d/eximguard (start|stop|reload|status);" \
    "pid in /run/eximguard.pid, log in /var/log/eximguard.log"
fi
echo "Next: add the ACL snippet for your Exim (README.md, 'Install'), then run: eximguard doctor"

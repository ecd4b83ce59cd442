#!/usr/bin/env bash
# install.sh - installs a built eximguard on this machine (Debian/Ubuntu or cPanel/WHM).
#
#   packaging/install.sh [BUILD_DIR]      (default BUILD_DIR: ./build)
#
# Installs /usr/lib/eximguard/eximguard.so, /usr/sbin/eximguard, the systemd unit, and a
# default /etc/eximguard/eximguard.json (mode 0600; an existing config is never overwritten),
# then creates the shared table. It does NOT edit Exim's configuration: add the ACL snippet from
# exim-config/ yourself (see README.md), so you decide when the guard goes live.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[[ $(id -u) -eq 0 ]] || { echo "install.sh: run as root" >&2; exit 1; }
for f in "$build/exim-dlfunc/eximguard.so" "$build/sidecar/eximguard"; do
  [[ -f $f ]] || { echo "install.sh: $f missing: build first (cmake -S . -B build && cmake --build build)" >&2; exit 1; }
done

install -d -m 0755 /usr/lib/eximguard
install -m 0644 "$build/exim-dlfunc/eximguard.so" /usr/lib/eximguard/eximguard.so
install -m 0755 "$build/sidecar/eximguard" /usr/sbin/eximguard
install -d -m 0700 /etc/eximguard /var/lib/eximguard
if [[ ! -e /etc/eximguard/eximguard.json ]]; then
  install -m 0600 "$here/packaging/eximguard.json" /etc/eximguard/eximguard.json
fi
/usr/sbin/eximguard config check --config /etc/eximguard/eximguard.json
if [[ -d /run/systemd/system ]]; then
  install -m 0644 "$here/packaging/eximguard.service" /etc/systemd/system/eximguard.service
  systemctl daemon-reload
  systemctl enable --now eximguard.service
else
  /usr/sbin/eximguard run --config /etc/eximguard/eximguard.json
fi
echo "eximguard installed. Next: add the ACL snippet for your Exim (README.md, 'Install')."

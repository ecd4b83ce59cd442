#!/usr/bin/env bash
# uninstall.sh - removes what install.sh installed. Keeps /etc/eximguard and /var/lib/eximguard
# unless --purge is given. Remove the ACL snippet from Exim's configuration FIRST: the snippet
# checks that the .so exists and lets mail through without it, but a stale snippet is clutter.
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "uninstall.sh: run as root" >&2; exit 1; }
if [[ -d /run/systemd/system && -f /etc/systemd/system/eximguard.service ]]; then
  systemctl disable --now eximguard.service || true
  rm -f /etc/systemd/system/eximguard.service
  systemctl daemon-reload
fi
rm -f /dev/shm/eximguard
rm -rf /usr/lib/eximguard /usr/sbin/eximguard
if [[ ${1:-} == --purge ]]; then rm -rf /etc/eximguard /var/lib/eximguard; fi
echo "eximguard removed."

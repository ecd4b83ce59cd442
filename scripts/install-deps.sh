#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages eximguard needs to build, test and demo.
# Called by scripts/test.sh and scripts/demo.sh; safe to run again (installs only what is
# missing). Needs root or sudo. Touches nothing but the package database.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev binutils passwd procps
  libboost-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
  libsqlite3-dev sqlite3 zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev
  exim4-daemon-heavy swaks faketime
  dovecot-core dovecot-imapd curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# exim4-daemon-heavy's (and dovecot-core's) postinst may try to start the system Exim (Dovecot);
# that is not needed here: the end-to-end tests start their own, on ports they pick.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Installs the Debian packages the test peers need: Go and govmomi's source (to build the vSphere
# simulator), the age CLI (the reference decrypter), util-linux-extra (fincore: which pages of a
# file are in the page cache, for the drop-behind tests), and the compiler that npm install uses
# for better-sqlite3 and the age payload addon (g++, make, python3). Idempotent; needs root or sudo.
set -euo pipefail

packages=(golang-go golang-github-vmware-govmomi-dev age util-linux-extra g++ make python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

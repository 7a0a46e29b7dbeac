#!/usr/bin/env bash
# Install Debian packages the project's scripts need, when they are missing
# (as root, on a Debian machine); otherwise say what to install.
#   usage: scripts/install-debian.sh PACKAGE...
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -gt 0 ] || exit 0
command -v apt-get >/dev/null || { echo "install: not a Debian machine: install ${missing[*]} yourself" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "install: ${missing[*]} missing; run as root: apt-get install ${missing[*]}" >&2; exit 1; }
echo "install: ${missing[*]} from Debian's packages" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Adds Debian's bookworm-backports as an apt source, unless a source names it already, and
# refreshes apt's lists when it did. Its default priority (100: NotAutomatic +
# ButAutomaticUpgrades) never replaces a package installed from bookworm: the private
# prefixes of install-mesa-prefix.sh and install-qemu-prefix.sh only `apt-get download` from it.
# Exit status 1 when apt-get update fails (the callers then skip with the reason).
set -uo pipefail
SOURCES=/etc/apt/sources.list.d/bookworm-backports.sources
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  exit 0
fi
echo "add-backports-source: adding bookworm-backports as an apt source ($SOURCES)"
printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
  "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
  $SUDO tee "$SOURCES" >/dev/null
$SUDO apt-get update -q

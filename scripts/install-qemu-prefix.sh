#!/usr/bin/env bash
# Installs QEMU 10.0 from Debian's bookworm-backports into a private prefix
# (default /opt/gst-vmdisplay/qemu-10) for the test suite qemu-10, leaving
# Debian 12's QEMU 7.2 as the system qemu. Nothing is installed with dpkg: the
# backports packages are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`. Idempotent: a complete prefix of the wanted version returns
# at once. Exits 0 with the reason printed when backports are unreachable.
#
# usage: scripts/install-qemu-prefix.sh [PREFIX]
#
# The prefix afterwards holds:
#   usr/bin/qemu-system-x86_64              QEMU 10.0.x
#   usr/lib/x86_64-linux-gnu/qemu/          its modules (ui-dbus, virtio-gpu...):
#                                           run it with QEMU_MODULE_DIR set there
#   usr/share/qemu, usr/share/seabios       firmware: pass -L for both
#   env                                     VMD_QEMU, VMD_QEMU_FIRMWARE and
#                                           QEMU_MODULE_DIR for the tests
set -euo pipefail

PREFIX=${1:-/opt/gst-vmdisplay/qemu-10}
# QEMU 10.0's packages, all from backports: the emulator, its common modules
# (virtio-gpu), the OpenGL modules package (it carries ui-dbus.so, the D-Bus
# display), the spice modules (so that no module of 7.2 is picked up for
# them) and the firmware (qemu-system-data; seabios: 10.0 wants >> 1.16.3-1).
PACKAGES=(qemu-system-x86 qemu-system-common qemu-system-data
  qemu-system-modules-opengl qemu-system-modules-spice seabios)

note() { echo "install-qemu-prefix: $*"; }
skip() { note "$* (the qemu-10 suite will skip)"; exit 0; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

# The candidate version of $1 in bookworm-backports, or "".
backports_version() {
  apt-cache madison "$1" 2>/dev/null |
    awk -F'|' '$3 ~ /bookworm-backports/ { gsub(/ /, "", $2); print $2; exit }'
}

# Fast path: a complete prefix whose QEMU is the backports' current one (or any
# 10.x when apt has no answer).
if [ -x "$PREFIX/usr/bin/qemu-system-x86_64" ] && [ -f "$PREFIX/env" ] && [ -f "$PREFIX/version" ]; then
  want=$(backports_version qemu-system-x86)
  have=$(cat "$PREFIX/version")
  if [ -z "$want" ] || [ "$want" = "$have" ]; then
    note "QEMU $have already in $PREFIX"
    exit 0
  fi
fi

command -v apt-get >/dev/null 2>&1 || skip "apt-get not found (not Debian)"
command -v dpkg-deb >/dev/null 2>&1 || skip "dpkg-deb not found"

# The backports source (shared with install-mesa-prefix.sh).
bash "$(dirname "${BASH_SOURCE[0]}")/add-backports-source.sh" || skip "apt-get update failed"
version=$(backports_version qemu-system-x86)
if [ -z "$version" ]; then
  $SUDO apt-get update -q || skip "apt-get update failed"
  version=$(backports_version qemu-system-x86)
fi
[ -n "$version" ] || skip "bookworm-backports has no qemu-system-x86 (unreachable?)"
case "$version" in
  *:10.*) ;;
  *) skip "bookworm-backports offers qemu-system-x86 $version, not 10.x" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
specs=()
for p in "${PACKAGES[@]}"; do
  v=$(backports_version "$p")
  [ -n "$v" ] || skip "bookworm-backports has no $p"
  specs+=("$p=$v")
done
note "downloading ${specs[*]}"
# apt-get download runs as _apt when it can write the directory.
chmod 0755 "$work"
chown _apt "$work" 2>/dev/null || true
(cd "$work" && apt-get download -q "${specs[@]}") || skip "apt-get download from bookworm-backports failed"

stage=$work/root
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$stage"
done
bin=$stage/usr/bin/qemu-system-x86_64
moddir=$stage/usr/lib/x86_64-linux-gnu/qemu
# Libraries: everything the emulator and its D-Bus display link must be in
# Debian 12 already (backports builds against bookworm).
for f in "$bin" "$moddir/ui-dbus.so" "$moddir/hw-display-virtio-gpu.so"; do
  if ldd "$f" | grep -q 'not found'; then
    ldd "$f" | grep 'not found' >&2
    skip "$(basename "$f") needs libraries Debian 12 lacks"
  fi
done
got=$(QEMU_MODULE_DIR=$moddir "$bin" --version | head -1)
note "unpacked: $got"

$SUDO rm -rf "$PREFIX.new"
$SUDO mkdir -p "$(dirname "$PREFIX")"
$SUDO cp -a "$stage" "$PREFIX.new"
echo "$version" | $SUDO tee "$PREFIX.new/version" >/dev/null
printf '%s\n' "VMD_QEMU=$PREFIX/usr/bin/qemu-system-x86_64" \
  "VMD_QEMU_FIRMWARE=$PREFIX/usr/share/seabios:$PREFIX/usr/share/qemu" \
  "QEMU_MODULE_DIR=$PREFIX/usr/lib/x86_64-linux-gnu/qemu" | $SUDO tee "$PREFIX.new/env" >/dev/null
$SUDO rm -rf "$PREFIX"
$SUDO mv "$PREFIX.new" "$PREFIX"
note "QEMU $version installed in $PREFIX (system qemu: $(qemu-system-x86_64 --version 2>/dev/null | head -1 || echo none))"

#!/usr/bin/env bash
# Runs every test suite on a fresh Debian 12: installs the missing Debian
# packages, builds with warnings as errors, runs all suites (unit, qemu, ...),
# then the unit and qemu suites once more under valgrind (definite leaks and
# memory errors fail them).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

BUILD=${BUILD_DIR:-build-tests}
if [ -f "$BUILD/build.ninja" ]; then
  meson configure "$BUILD" -Dwerror=true -Dtests=enabled -Dtest-vm=enabled
else
  meson setup "$BUILD" -Dwerror=true -Dtests=enabled -Dtest-vm=enabled
fi
ninja -C "$BUILD"

meson test -C "$BUILD" --print-errorlogs --num-processes 2
meson test -C "$BUILD" --setup valgrind --suite unit --suite qemu --print-errorlogs --num-processes 1

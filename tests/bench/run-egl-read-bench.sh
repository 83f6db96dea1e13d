#!/usr/bin/env bash
# egl-read-bench under Mesa 25's llvmpipe, from scripts/install-mesa-prefix.sh's prefix (the
# same environment as the gl suite's dmabuf-import-mesa25 test). Figures only.
#
# usage: tests/bench/run-egl-read-bench.sh [BUILD_DIR] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
PREFIX=${VMD_MESA_PREFIX:-/opt/gst-vmdisplay/mesa-25}
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
[ -x "$BUILD/tests/bench/egl-read-bench" ] || { echo "build first: ninja -C $BUILD" >&2; exit 2; }
[ -f "$PREFIX/egl-vendor.json" ] || { echo "no Mesa 25 in $PREFIX: scripts/install-mesa-prefix.sh" >&2; exit 2; }
LD_LIBRARY_PATH="$LIBDIR" __EGL_VENDOR_LIBRARY_FILENAMES="$PREFIX/egl-vendor.json" \
  LIBGL_DRIVERS_PATH="$LIBDIR/dri" GBM_BACKENDS_PATH="$LIBDIR/gbm" \
  "$BUILD/tests/bench/egl-read-bench" "${2:-200}"

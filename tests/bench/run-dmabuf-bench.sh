#!/usr/bin/env bash
# The gl=on figures of docs/performance.md in one run: the CPU detiler against memcpy
# (detile-bench), then the UpdateDMABUF reply latency through the whole element against the
# scripted QEMU (dmabuf-ack-bench), on the CPU path, and with detile=gl under Mesa 25's
# llvmpipe (scripts/install-mesa-prefix.sh) with detile=gl, where LINEAR buffers go through the EGL import.
# Figures only; never fails on a timing.
#
# usage: tests/bench/run-dmabuf-bench.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
ROUNDS=${2:-300}
PREFIX=${VMD_MESA_PREFIX:-/opt/gst-vmdisplay/mesa-25}
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
for b in detile-bench dmabuf-ack-bench; do
  [ -x "$BUILD/tests/bench/$b" ] || { echo "build first: ninja -C $BUILD" >&2; exit 2; }
done
export GST_PLUGIN_PATH_1_0="$PWD/$BUILD/ext/qemu"
export GST_REGISTRY_1_0="$PWD/$BUILD/tests/bench/dmabuf-bench.registry"

echo "== CPU detile, 1920x1080 XR24"
"$BUILD/tests/bench/detile-bench"
echo
echo "== UpdateDMABUF reply, CPU path (detile=cpu)"
"$BUILD/tests/bench/dmabuf-ack-bench" "$ROUNDS" 1920 1080 cpu
echo
if [ -f "$PREFIX/egl-vendor.json" ]; then
  echo "== UpdateDMABUF reply, detile=gl on Mesa 25 llvmpipe (LINEAR through EGL; tiled: refused)"
  LD_LIBRARY_PATH="$LIBDIR" __EGL_VENDOR_LIBRARY_FILENAMES="$PREFIX/egl-vendor.json" \
    LIBGL_DRIVERS_PATH="$LIBDIR/dri" GBM_BACKENDS_PATH="$LIBDIR/gbm" \
    GST_REGISTRY_1_0="$PWD/$BUILD/tests/bench/dmabuf-bench-mesa25.registry" \
    "$BUILD/tests/bench/dmabuf-ack-bench" "$ROUNDS" 1920 1080 gl
else
  echo "== no Mesa 25 in $PREFIX (scripts/install-mesa-prefix.sh): EGL figures skipped"
fi

#!/usr/bin/env bash
# The main job on the bundled default: builds gst-vmdisplay and the project's
# own tiny test VM, boots it under QEMU with its D-Bus display on a private
# bus, and shows it through qemudbussrc:
#  - with a desktop ($DISPLAY or $WAYLAND_DISPLAY): in a window, until closed;
#  - headless: records demo-output/vm.mp4 (H.264) and one PNG snapshot a
#    second for --seconds seconds (default 10), then prints where they are.
# Installs missing Debian packages first.
#
# usage: scripts/demo.sh [--seconds N] [--headless] [--mode WxH] [--full-damage]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

seconds=10
headless=0
mode=1024x768
damage=counter
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --headless) headless=1; shift ;;
    --mode) mode=$2; shift 2 ;;
    --full-damage) damage=full; shift ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  headless=1
fi

bash scripts/install-deps.sh

BUILD=${BUILD_DIR:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dtest-vm=enabled
fi
ninja -C "$BUILD"

export GST_PLUGIN_PATH="$ROOT/$BUILD/ext/qemu${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
VMDIR="$ROOT/$BUILD/tests/vm"
source tests/vm/host-session.sh
host_session_start gst-vmdisplay-demo

echo "demo: booting the test VM ($mode, $damage damage) ..."
bash tests/vm/run-test-vm.sh --vm-dir "$VMDIR" --name demo --bus "$BUS" \
  --serial "$WORK/serial.log" \
  --append "vmpattern.output=drm vmpattern.modes=$mode vmpattern.damage=$damage" &
track_pid $!
for _ in $(seq 300); do
  grep -q "VMPATTERN READY" "$WORK/serial.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "VMPATTERN READY" "$WORK/serial.log" 2>/dev/null || {
  echo "demo: the VM did not come up; its console said:" >&2
  cat "$WORK/serial.log" >&2 || true
  exit 1
}

if [ "$headless" = 0 ]; then
  echo "demo: showing VM 'demo' in a window (close it to stop)"
  gst-launch-1.0 qemudbussrc address="$BUS" vm=demo ! videoconvert ! autovideosink
  exit 0
fi

OUT="$ROOT/demo-output"
mkdir -p "$OUT"
rm -f "$OUT"/snapshot-*.png "$OUT/vm.mp4"
echo "demo: no desktop here; recording $seconds s of VM 'demo' to $OUT"
# x264enc is in gstreamer1.0-plugins-ugly; one PNG a second on the side.
# gst-launch -e turns the SIGINT from timeout into EOS, so the MP4 is finished properly.
status=0
timeout -s INT "$seconds" gst-launch-1.0 -e \
  qemudbussrc address="$BUS" vm=demo max-framerate=30/1 ! tee name=t \
  t. ! queue ! videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast ! h264parse ! mp4mux ! filesink location="$OUT/vm.mp4" \
  t. ! queue ! videorate drop-only=true ! video/x-raw,framerate=1/1 ! videoconvert ! video/x-raw,format=RGB ! pngenc ! multifilesink location="$OUT/snapshot-%02d.png" \
  > "$WORK/gst.log" 2>&1 || status=$?
# 124: timeout sent SIGINT, the normal end of the recording.
if [ "$status" != 0 ] && [ "$status" != 124 ]; then
  cat "$WORK/gst.log" >&2
  exit 1
fi
echo "demo: wrote $OUT/vm.mp4 and $(ls "$OUT"/snapshot-*.png | wc -l) snapshots:"
ls -l "$OUT"

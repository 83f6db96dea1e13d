#!/usr/bin/env bash
# Glass-to-glass latency of vmwebrtcsink on this machine (tests/bench/glass-to-glass.mjs):
# boots the test VM at each MODE with vmpattern.frames=1 (a VMFRAME line per counter step,
# every 33 ms), serves it with `qemudbussrc show-cursor=false ! vmwebrtcsink` (x264enc),
# watches it with 1, 2 and 4 headless Chromium tabs and prints latency (median, p95) and
# the sink's CPU time per second of wall time.
#
# usage: tests/bench/run-glass-bench.sh [BUILD_DIR] [SECONDS] [MODES]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${1:-build}
SECONDS_EACH=${2:-20}
MODES=${3:-1024x768 1920x1080}
export GST_PLUGIN_PATH="$ROOT/$BUILD/ext/qemu:$ROOT/$BUILD/ext/webrtc"
source tests/vm/host-session.sh
host_session_start gst-vmdisplay-glass

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for mode in $MODES; do
  : > "$WORK/serial-$mode.log"
  bash tests/vm/run-test-vm.sh --vm-dir "$ROOT/$BUILD/tests/vm" --name glass --bus "$BUS" \
    --serial "$WORK/serial-$mode.log" \
    --append "vmpattern.output=drm vmpattern.modes=$mode vmpattern.interval=33 vmpattern.frames=1" &
  vm=$!
  for _ in $(seq 600); do grep -q "VMPATTERN READY" "$WORK/serial-$mode.log" && break; sleep 0.1; done
  gst-launch-1.0 qemudbussrc address="$BUS" vm=glass show-cursor=false ! \
    vmwebrtcsink port=0 > "$WORK/gst.log" 2>&1 &
  gst=$!
  for _ in $(seq 100); do grep -q "Open http" "$WORK/gst.log" && break; sleep 0.1; done
  url=$(grep -o 'Open http[^ ]*' "$WORK/gst.log" | head -n1 | cut -c6-)
  for viewers in 1 2 4; do
    t0=$(cpu_ticks $gst); s0=$(date +%s.%N)
    result=$(node tests/bench/glass-to-glass.mjs "$url" "$WORK/serial-$mode.log" "$SECONDS_EACH" "$viewers")
    t1=$(cpu_ticks $gst); s1=$(date +%s.%N)
    cpu=$(python3 -c "print(round(100.0 * ($t1 - $t0) / $(getconf CLK_TCK) / ($s1 - $s0), 1))")
    echo "$mode viewers=$viewers sink_cpu=${cpu}% $result"
  done
  kill $gst $vm 2>/dev/null || true
  wait $gst $vm 2>/dev/null || true
done

#!/usr/bin/env bash
# Capture benchmark on the bundled test VM: qemudbussrc ! fakesink against
# QEMU's own VNC server read by rfbsrc ! fakesink, on the same VM in the same
# run, at 1024x768 and 1920x1080, with full-screen and small-rectangle damage.
# Prints a Markdown table (CPU seconds per 100 delivered frames, fps) on
# stdout. Figures only: it never fails on a timing.
#
# usage: tests/bench/run-capture-bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${1:-build}
SECONDS_PER_RUN=${2:-10}
BENCH="$ROOT/$BUILD/tests/bench/capture-bench"
VMDIR="${GST_VMDISPLAY_TEST_VM_DIR:-$ROOT/$BUILD/tests/vm}"
[ -x "$BENCH" ] || { echo "build first: ninja -C $BUILD" >&2; exit 2; }
[ -f "$VMDIR/vmlinuz" ] || { echo "no test VM in $VMDIR (meson -Dtest-vm=enabled)" >&2; exit 2; }
export GST_PLUGIN_PATH="$ROOT/$BUILD/ext/qemu${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

source tests/vm/host-session.sh
host_session_start capture-bench

VNC_DISPLAY=47 # port 5947, loopback only

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

echo "| mode | damage | path | fps | client CPU s / 100 frames | QEMU CPU s / 100 frames |"
echo "|---|---|---|---|---|---|"
for mode in 1024x768 1920x1080; do
  for damage in counter full; do
    log="$WORK/serial-$mode-$damage.log"
    # The guest redraws every 20 ms; QEMU's 2D refresh (30 ms) caps what it sends.
    bash tests/vm/run-test-vm.sh --vm-dir "$VMDIR" --name bench --bus "$BUS" --serial "$log" \
      --vnc "127.0.0.1:$VNC_DISPLAY" \
      --append "vmpattern.output=drm vmpattern.modes=$mode vmpattern.damage=$damage vmpattern.interval=20" \
      > "$WORK/qemu.out" 2>&1 &
    qpid=$!
    track_pid "$qpid"
    for _ in $(seq 600); do grep -q "VMPATTERN READY $mode" "$log" 2>/dev/null && break; sleep 0.1; done
    if ! grep -q "VMPATTERN READY $mode" "$log" 2>/dev/null; then
      echo "VM did not come up for $mode $damage:" >&2; cat "$log" "$WORK/qemu.out" >&2; exit 1
    fi
    for path in dbus vnc; do
      if [ "$path" = dbus ]; then
        src="qemudbussrc address=$BUS vm=bench keepalive-ms=0"
        name="qemudbussrc"
      else
        src="rfbsrc host=127.0.0.1 port=$((5900 + VNC_DISPLAY)) shared=true"
        name="rfbsrc (QEMU VNC)"
      fi
      out=$("$BENCH" --seconds "$SECONDS_PER_RUN" --warmup 2 --pid "$qpid" "$src" 2>"$WORK/bench.err") || {
        echo "| $mode | $damage | $name | failed: $(tr '\n' ' ' < "$WORK/bench.err") | | |"
        continue
      }
      echo "| $mode | $damage | $name | $(field fps "$out") | $(field cpu_s_per_100 "$out") | $(field peer_cpu_s_per_100 "$out") |"
    done
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  done
done

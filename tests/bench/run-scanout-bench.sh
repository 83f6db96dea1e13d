#!/usr/bin/env bash
# Scanout benchmark on the bundled test VM: the host-side path "guest screen ->
# qemudbussrc -> helixframesrv -> H.264 to a client" (tests/bench/scanout-bench.cpp),
# at 1024x768 and 1920x1080, with full-screen and small-rectangle damage. For each,
# boots the VM on a private D-Bus session bus, waits for the pattern, then measures
# a SUBSCRIBE stream (latency from a frame entering helixframesrv to the client
# having its access unit; frames received vs captured) and sequential FRAME_REQUESTs
# by resource ID (round trip). Prints a Markdown table on stdout, the raw key=value
# lines and progress on stderr. Figures only: it never fails on a timing.
#
# usage: tests/bench/run-scanout-bench.sh [BUILD_DIR] [SECONDS]
#
# SCANOUT_BENCH_TRACE=1: also run GStreamer's latency tracer (flags=element) and
# print on stderr, per case, the mean time a buffer spends in each element of
# helixframesrv's encoding pipelines (videoconvert "conv", x264enc, h264parse).
# The tracer costs CPU itself: take the table of such a run as indicative only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${1:-build}
SECONDS_PER_RUN=${2:-10}
BENCH="$ROOT/$BUILD/tests/bench/scanout-bench"
VMDIR="${GST_VMDISPLAY_TEST_VM_DIR:-$ROOT/$BUILD/tests/vm}"
[ -x "$BENCH" ] || { echo "build first: ninja -C $BUILD" >&2; exit 2; }
[ -f "$VMDIR/vmlinuz" ] || { echo "no test VM in $VMDIR (meson -Dtest-vm=enabled)" >&2; exit 2; }
export GST_PLUGIN_PATH="$ROOT/$BUILD/ext/qemu:$ROOT/$BUILD/gst/helix${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

source tests/vm/host-session.sh
host_session_start scanout-bench

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -n1; }

echo "run-scanout-bench: $(date -u +%FT%TZ), $(nproc) cores, uptime: $(uptime)" >&2
echo "| mode | damage | captured fps | SUBSCRIBE fps | skipped | latency ms mean / p50 / p95 | kbit/s | CPU s / 100 frames (QEMU) | resource-ID fps | round trip ms mean / p50 / p95 | CPU s / 100 frames (QEMU) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for mode in 1024x768 1920x1080; do
  for damage in counter full; do
    log="$WORK/serial-$mode-$damage.log"
    # The guest redraws every 20 ms; QEMU's 2D refresh (30 ms) caps what it sends.
    bash tests/vm/run-test-vm.sh --vm-dir "$VMDIR" --name bench --bus "$BUS" --serial "$log" \
      --append "vmpattern.output=drm vmpattern.modes=$mode vmpattern.damage=$damage vmpattern.interval=20" \
      > "$WORK/qemu.out" 2>&1 &
    qpid=$!
    track_pid "$qpid"
    for _ in $(seq 600); do
      grep -q "VMPATTERN READY $mode" "$log" 2>/dev/null && break
      kill -0 "$qpid" 2>/dev/null || break
      sleep 0.1
    done
    if ! grep -q "VMPATTERN READY $mode" "$log" 2>/dev/null; then
      echo "VM did not come up for $mode $damage within 60 s:" >&2
      cat "$log" "$WORK/qemu.out" >&2 2>/dev/null || true
      exit 1
    fi
    echo "run-scanout-bench: $mode $damage: load average $(cut -d" " -f1-3 /proc/loadavg)" >&2
    trace=()
    if [ -n "${SCANOUT_BENCH_TRACE:-}" ]; then
      trace=(env "GST_TRACERS=latency(flags=element)" "GST_DEBUG=GST_TRACER:7"
             GST_DEBUG_NO_COLOR=1 "GST_DEBUG_FILE=$WORK/trace.log")
    fi
    if out=$("${trace[@]}" "$BENCH" --address "$BUS" --vm bench --pid "$qpid" --seconds "$SECONDS_PER_RUN" \
        --warmup 2 --tmpdir "$WORK" 2>"$WORK/bench.err"); then
      echo "$out" | sed "s/^/  $mode $damage: /" >&2
      f() { field "$1" "$out"; }
      got=$(f mode)
      [ "$got" = "$mode" ] || echo "run-scanout-bench: warning: captured $got, not $mode" >&2
      echo "| $mode | $damage | $(f captured_fps) | $(f sub_fps) | $(f sub_skipped) / $(f sub_captured)" \
        "| $(f sub_lat_mean_ms) / $(f sub_lat_p50_ms) / $(f sub_lat_p95_ms) | $(f sub_kbit_s)" \
        "| $(f sub_cpu_s_per_100) ($(f sub_qemu_cpu_s_per_100)) | $(f req_fps)" \
        "| $(f req_rtt_mean_ms) / $(f req_rtt_p50_ms) / $(f req_rtt_p95_ms)" \
        "| $(f req_cpu_s_per_100) ($(f req_qemu_cpu_s_per_100)) |"
      if [ -n "${SCANOUT_BENCH_TRACE:-}" ]; then
        # element-latency records: element=(string)NAME, ..., time=(guint64)NS; digits folded
        # so the subscription's encoder and the resource-ID client's add up.
        sed -n 's/.*element-latency, .*element=(string)\([^,]*\),.*time=(guint64)\([0-9][0-9]*\).*/\1 \2/p' \
          "$WORK/trace.log" | sed 's/[0-9]* / /' |
          awk -v c="$mode $damage" '{n[$1]++; s[$1]+=$2}
            END {for (k in n) printf "  %s: element %s: %d buffers, mean %.2f ms\n", c, k, n[k], s[k]/n[k]/1e6}' >&2
        rm -f "$WORK/trace.log"
      fi
    else
      echo "| $mode | $damage | failed: $(tr '\n' ' ' < "$WORK/bench.err") | | | | | | | | |"
    fi
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  done
done

#!/usr/bin/env bash
# HXFR pixel-upload benchmark: helixframesrv over UNIX and TCP loopback against
# the same encoder run locally, 1920x1080 NV12 and BGRx, all in one process
# (tests/bench/hxfr-bench.cpp). Prints a Markdown table on stdout, progress on
# stderr. Figures only: it never fails on a timing. No VM, no GPU; needs an
# H.264 encoder helixframesrv's encoder=auto finds (x264enc here).
#
# usage: tests/bench/run-hxfr-bench.sh [BUILD_DIR] [FRAMES] [extra hxfr-bench options]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${1:-build}
FRAMES=${2:-100}
shift $(( $# > 2 ? 2 : $# ))
BENCH="$ROOT/$BUILD/tests/bench/hxfr-bench"
[ -x "$BENCH" ] || { echo "build first: ninja -C $BUILD" >&2; exit 2; }
export GST_PLUGIN_PATH="$ROOT/$BUILD/gst/helix${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
echo "run-hxfr-bench: $(date -u +%FT%TZ), $(nproc) cores," \
  "load average $(cut -d" " -f1-3 /proc/loadavg)" >&2
exec "$BENCH" --frames "$FRAMES" --warmup 5 --distinct 60 "$@"

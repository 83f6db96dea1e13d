#!/usr/bin/env bash
# The main job on the bundled default: builds gst-vmdisplay and the project's
# own tiny test VM, boots it under QEMU with its D-Bus display on a private
# bus, and serves it to browsers with vmwebrtcsink:
#   qemudbussrc show-cursor=false ! vmwebrtcsink
# It prints the URL to open (http://127.0.0.1:8080/#token=...): the VM plays in
# the tab, and keyboard and mouse in the tab go to the VM. It runs until Ctrl-C.
# With --headless (or when there is no desktop) it also opens the page in
# headless Chromium for --seconds (default 10), saves demo-output/page.png and
# stops. Installs missing Debian packages first.
#
# usage: scripts/demo.sh [--seconds N] [--headless] [--port P] [--bind ADDR]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

seconds=10
headless=0
port=8080
bind=127.0.0.1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --headless) headless=1; shift ;;
    --port) port=$2; shift 2 ;;
    --bind) bind=$2; shift 2 ;;
    -h|--help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
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

export GST_PLUGIN_PATH="$ROOT/$BUILD/ext/qemu:$ROOT/$BUILD/ext/webrtc${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
VMDIR="$ROOT/$BUILD/tests/vm"
source tests/vm/host-session.sh
host_session_start gst-vmdisplay-demo

# virtio-gpu, so "fit VM to window" can resize the guest (vmpattern follows the
# size the host asks for); keyboard and mouse reported on the serial console.
echo "demo: booting the test VM ..."
bash tests/vm/run-test-vm.sh --vm-dir "$VMDIR" --name demo --bus "$BUS" --vga virtio \
  --serial "$WORK/serial.log" \
  --append "vmpattern.output=drm vmpattern.virtio=1 vmpattern.follow=1 vmpattern.input=1" &
track_pid $!
for _ in $(seq 600); do
  grep -q "VMPATTERN READY" "$WORK/serial.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "VMPATTERN READY" "$WORK/serial.log" 2>/dev/null || {
  echo "demo: the VM did not come up; its console said:" >&2
  cat "$WORK/serial.log" >&2 || true
  exit 1
}

# A token of our own, so the URL is known here (vmwebrtcsink makes a random one otherwise).
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
gst-launch-1.0 qemudbussrc address="$BUS" vm=demo show-cursor=false max-framerate=30/1 ! \
  vmwebrtcsink bind="$bind" port="$port" token="$token" > "$WORK/gst.log" 2>&1 &
gst=$!
track_pid $gst
for _ in $(seq 100); do
  grep -q "Open http" "$WORK/gst.log" 2>/dev/null && break
  kill -0 $gst 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "Open http" "$WORK/gst.log"; then
  echo "demo: vmwebrtcsink did not start:" >&2
  cat "$WORK/gst.log" >&2
  exit 1
fi
url=$(grep -o 'Open http[^ ]*' "$WORK/gst.log" | head -n1 | cut -c6-)
echo "demo: the VM is served; open $url"

if [ "$headless" = 0 ]; then
  echo "demo: keyboard and mouse in the tab go to the VM; Ctrl-C stops"
  wait $gst
  exit 0
fi

OUT="$ROOT/demo-output"
mkdir -p "$OUT"
rm -f "$OUT/page.png"
echo "demo: no desktop here; watching it for $seconds s in headless Chromium"
status=0
printf '%s\n' \
  "{\"cmd\":\"open\",\"id\":\"demo\",\"url\":\"$url\",\"width\":1320,\"height\":900}" \
  "{\"cmd\":\"wait\",\"id\":\"demo\",\"expr\":\"vmViewer.state === 'playing'\",\"timeout_ms\":30000}" \
  "{\"cmd\":\"eval\",\"id\":\"demo\",\"expr\":\"new Promise(r => setTimeout(() => r(vmViewer.videoWidth + 'x' + vmViewer.videoHeight + ', ' + vmViewer.framesDecoded + ' frames decoded'), $seconds * 1000))\",\"timeout_ms\":$(( seconds * 1000 + 5000 ))}" \
  "{\"cmd\":\"screenshot\",\"id\":\"demo\",\"path\":\"$OUT/page.png\"}" \
  '{"cmd":"quit"}' |
  VMD_BROWSER_DIR="$ROOT/tests/browser" node tests/browser/driver.mjs > "$WORK/driver.log" 2>&1 ||
  status=$?
if [ "$status" != 0 ] || grep -q '"ok":false' "$WORK/driver.log"; then
  echo "demo: the page did not play:" >&2
  cat "$WORK/driver.log" >&2
  exit 1
fi
echo "demo: the page played $(grep -o '"value":"[^"]*frames decoded"' "$WORK/driver.log" | cut -d'"' -f4)"
echo "demo: wrote $OUT/page.png"

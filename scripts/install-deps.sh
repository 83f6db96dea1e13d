#!/usr/bin/env bash
# Installs the Debian 12 packages gst-vmdisplay needs to build, run the demo
# and run every test suite. Installs only what is missing; needs root (or
# sudo) when something is.
set -euo pipefail

PACKAGES=(
  # build
  meson ninja-build pkg-config g++ gcc libc6-dev linux-libc-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libglib2.0-dev libdrm-dev
  # vmwebrtcsink: libsoup 3, webrtcbin's library and ICE plugin, JSON, zlib (cursor PNGs)
  libsoup-3.0-dev libgstreamer-plugins-bad1.0-dev gstreamer1.0-nice libjson-glib-dev zlib1g-dev
  # qemudbussrc's EGL dma-buf reader (libepoxy), GStreamer's GL plugins (glupload, gldownload)
  libepoxy-dev gstreamer1.0-gl
  # run and test
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-plugins-base-apps  # gst-device-monitor-1.0 (qemudeviceprovider-vm)
  dbus dbus-daemon qemu-system-x86 qemu-utils
  # the bundled test VM (kernel is fetched with apt-get download)
  busybox-static cpio
  # the viewer test: ximagesink in a virtual X server, driven by xdotool
  gstreamer1.0-x xvfb xdotool
  # leak check of the qemu suite
  valgrind
  # scripts
  python3
  # fuzzing (tests/fuzz/run-fuzz.sh: clang++ -fsanitize=fuzzer,address,undefined)
  clang libclang-rt-14-dev
  # the browser suite: Debian's Chromium driven by playwright-core (tests/browser, npm)
  chromium nodejs
)
# npm: Debian's package, unless the installed Node.js brings its own (a nodejs build that
# Provides npm conflicts with Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing missing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Mesa 25 from bookworm-backports in a private prefix, for the gl suite's dma-buf import tests.
bash "$(dirname "${BASH_SOURCE[0]}")/install-mesa-prefix.sh"

# playwright-core for tests/browser/driver.mjs, at the version package-lock.json pins (it
# drives /usr/bin/chromium and downloads no browser of its own); again when the lock moved.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
(
  cd "$ROOT/tests/browser"
  want="$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")"
  have="$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
  [ -d node_modules/playwright-core ] && [ "$want" = "$have" ] || npm ci --no-audit --no-fund
)

# QEMU 10.0 from bookworm-backports in a private prefix, for the qemu-10 suite (Debian's 7.2
# stays the system qemu); says why and carries on when backports are unreachable.
bash "$ROOT/scripts/install-qemu-prefix.sh"

#!/usr/bin/env bash
# Mesa 25 from bookworm-backports in a private prefix, for the gl test suite only.
#
# Debian 12's Mesa 22.3 has no EGL_EXT_image_dma_buf_import on llvmpipe; Mesa 25's llvmpipe
# imports a memfd as a LINEAR dma-buf, so the EGL reader (ext/qemu/dmabuf-import.cpp) can be
# tested for real on a machine without DRM. Nothing is installed into the system: the debs are
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` under $PREFIX, and an EGL
# vendor file there names that prefix's libEGL_mesa.so.0. The tests that need it set
# LD_LIBRARY_PATH, __EGL_VENDOR_LIBRARY_FILENAMES and LIBGL_DRIVERS_PATH (tests/check/meson.build).
#
# Idempotent: returns at once when $PREFIX holds these exact versions. When bookworm-backports
# cannot be reached it says why and exits 0 (the gl tests then skip, printing the reason).
set -euo pipefail

PREFIX=${VMD_MESA_PREFIX:-/opt/gst-vmdisplay/mesa-25}
MESA_VERSION=${VMD_MESA_VERSION:-25.0.7-2~bpo12+1}
DRM_VERSION=${VMD_LIBDRM_VERSION:-2.4.123-1~bpo12+1}
# libegl-mesa0 and mesa-libgallium need libdrm >= 2.4.121 (amdgpu and intel too: the gallium
# library links them); libgbm1 is libegl-mesa0's exact-version dependency. It runs on the
# installed libllvm15.
MESA_PACKAGES=(libegl-mesa0 libgl1-mesa-dri libgbm1 mesa-libgallium)
DRM_PACKAGES=(libdrm2 libdrm-amdgpu1 libdrm-intel1)
STAMP="$PREFIX/.installed"
WANT="mesa $MESA_VERSION libdrm $DRM_VERSION"

skip() {
  echo "install-mesa-prefix: $*; the gl suite's Mesa 25 tests will skip" >&2
  exit 0
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

bash "$(dirname "${BASH_SOURCE[0]}")/add-backports-source.sh" ||
  skip "cannot add bookworm-backports as an apt source"
if ! $SUDO apt-get update -q >/tmp/install-mesa-prefix.apt.log 2>&1 ||
    grep -q "bookworm-backports.*\(Err\|Could not\|Failed\)" /tmp/install-mesa-prefix.apt.log; then
  skip "apt-get update failed for bookworm-backports (see /tmp/install-mesa-prefix.apt.log)"
fi
if apt-get -s upgrade 2>/dev/null | grep '^Inst' | grep -q 'bookworm-backports'; then
  skip "refusing: 'apt-get -s upgrade' would take packages from bookworm-backports"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt's sandbox user writes the downloads
fetch() { # package version
  (cd "$work" && apt-get download -q "$1=$2" >/dev/null 2>&1) && return 0
  echo "install-mesa-prefix: $1=$2 is gone from the mirror, taking bookworm-backports' current one"
  (cd "$work" && apt-get download -q "$1/bookworm-backports" >/dev/null 2>&1) ||
    skip "apt-get download $1 from bookworm-backports failed"
}
for p in "${MESA_PACKAGES[@]}"; do fetch "$p" "$MESA_VERSION"; done
for p in "${DRM_PACKAGES[@]}"; do fetch "$p" "$DRM_VERSION"; done

# Unpack next to the prefix and move it into place in one step.
staging="$PREFIX.new"
$SUDO rm -rf "$staging"
$SUDO mkdir -p "$staging"
for deb in "$work"/*.deb; do
  $SUDO dpkg-deb -x "$deb" "$staging"
done
libdir="$PREFIX/usr/lib/x86_64-linux-gnu"
[ -e "$staging/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0" ] ||
  skip "the unpacked packages have no libEGL_mesa.so.0"
$SUDO tee "$staging/egl-vendor.json" >/dev/null <<EOF
{
  "file_format_version" : "1.0.0",
  "ICD" : { "library_path" : "$libdir/libEGL_mesa.so.0" }
}
EOF
(cd "$work" && ls ./*.deb) | $SUDO tee "$staging/packages.txt" >/dev/null
echo "$WANT" | $SUDO tee "$staging/.installed" >/dev/null
$SUDO rm -rf "$PREFIX"
$SUDO mv "$staging" "$PREFIX"
echo "install-mesa-prefix: Mesa $MESA_VERSION in $PREFIX"

#!/bin/sh
# Builds the test VM from Debian packages: OUTDIR/vmlinuz and
# OUTDIR/initramfs.cpio.gz (busybox, vmpattern, guest/init, a few modules).
#
# usage: build-test-vm.sh OUTDIR [VMPATTERN_BINARY]
#
# Without VMPATTERN_BINARY, vmpattern is compiled here with cc (static).
#
# Environment:
#   TEST_VM_KERNEL_DEB  use this linux-image .deb instead of downloading one
#   TEST_VM_CACHE_DIR   where downloads and the unpacked kernel are kept
#                       (default OUTDIR/cache); share it between build dirs
#   TEST_VM_BUSYBOX     static busybox to use (default /bin/busybox, from
#                       Debian's busybox-static)
#   TEST_VM_EXTRA_BINS  more static programs for the guest's /bin
#
# The kernel is the one Debian's linux-image-amd64 depends on; it is fetched
# with `apt-get download` once and cached, so later runs only repack the
# initramfs (about a second).
set -eu

# Modules the initramfs carries, with everything they depend on. The guest's
# /init decides which to load: bochs for drm output, virtio-gpu on request,
# virtio_console and vsock for the virtio transports, and for
# vmpattern.input=1 evdev, the PS/2 mouse (the PS/2 keyboard is built in),
# virtio-input (virtio-tablet/keyboard-pci) and USB HID behind an xHCI
# controller (qemu-xhci + usb-tablet/usb-kbd).
MODULES="bochs virtio-gpu virtio_pci virtio_console vmw_vsock_virtio_transport vsock
	evdev psmouse virtio_input xhci_pci usbhid hid_generic"

# busybox applets the guest's /init uses.
APPLETS="sh mount modprobe poweroff cat tr echo"

die() {
	echo "build-test-vm: error: $*" >&2
	exit 1
}

note() {
	echo "build-test-vm: $*" >&2
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 OUTDIR [VMPATTERN_BINARY]"

srcdir=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" || die "cannot create $1"
outdir=$(cd "$1" && pwd)
cachedir=${TEST_VM_CACHE_DIR:-$outdir/cache}
busybox=${TEST_VM_BUSYBOX:-/bin/busybox}
mkdir -p "$cachedir" || die "cannot create $cachedir"

for tool in dpkg-deb cpio gzip od; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install dpkg, cpio, gzip, coreutils)"
done
[ -x "$busybox" ] || die "$busybox not found (install busybox-static)"

# Nothing but these files exists in the guest, so a dynamically linked
# binary would fail there with a confusing "not found". True when the ELF
# file has no PT_INTERP program header (x86-64 little-endian layout).
is_static_elf() {
	[ "$(od -An -tx1 -N4 "$1" | tr -d ' ')" = 7f454c46 ] || return 1
	phoff=$(od -An -tu8 -j32 -N8 "$1" | tr -d ' ')
	phentsize=$(od -An -tu2 -j54 -N2 "$1" | tr -d ' ')
	phnum=$(od -An -tu2 -j56 -N2 "$1" | tr -d ' ')
	i=0
	while [ "$i" -lt "$phnum" ]; do
		type=$(od -An -tu4 -j$((phoff + i * phentsize)) -N4 "$1" | tr -d ' ')
		[ "$type" = 3 ] && return 1
		i=$((i + 1))
	done
	return 0
}

is_static_elf "$busybox" || die "$busybox is not statically linked (install busybox-static, not busybox)"

# --- vmpattern ---------------------------------------------------------------

if [ $# -eq 2 ]; then
	vmpattern=$2
	[ -f "$vmpattern" ] || die "vmpattern binary $vmpattern not found"
else
	vmpattern=$outdir/vmpattern
	note "compiling $vmpattern"
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -I/usr/include/libdrm -static \
		-o "$vmpattern" "$srcdir"/guest/*.c ||
		die "compiling vmpattern failed (needs gcc, libc6-dev, libdrm-dev)"
fi
is_static_elf "$vmpattern" || die "$vmpattern is not statically linked"

# --- kernel package ----------------------------------------------------------

find_kernel_deb() {
	if [ -n "${TEST_VM_KERNEL_DEB:-}" ]; then
		[ -f "$TEST_VM_KERNEL_DEB" ] || die "TEST_VM_KERNEL_DEB=$TEST_VM_KERNEL_DEB does not exist"
		echo "$TEST_VM_KERNEL_DEB"
		return
	fi
	command -v apt-cache >/dev/null 2>&1 ||
		die "apt-cache not found: on non-Debian systems set TEST_VM_KERNEL_DEB to a Debian linux-image .deb"
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update, or set TEST_VM_KERNEL_DEB)"
	for deb in "$cachedir/${pkg}"_*_amd64.deb; do
		if [ -f "$deb" ]; then
			echo "$deb"
			return
		fi
	done
	note "downloading $pkg into $cachedir"
	(cd "$cachedir" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
	for deb in "$cachedir/${pkg}"_*_amd64.deb; do
		[ -f "$deb" ] && echo "$deb" && return
	done
	die "apt-get download $pkg left no .deb in $cachedir"
}

deb=$(find_kernel_deb)
kcache=$cachedir/$(basename "$deb" .deb)

# Unpack once: keep vmlinuz and only the modules we need (with their
# dependencies, from a modules.dep made by busybox depmod over the whole
# tree), not the package's 400 MB. "done" holds the module list it was made
# for: a cache from an older list is unpacked again.
modlist=$(echo $MODULES)
if [ ! -f "$kcache/done" ] || [ "$(cat "$kcache/done")" != "$modlist" ]; then
	note "unpacking $(basename "$deb")"
	tmp=$(mktemp -d "$cachedir/.unpack.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
	set -- "$tmp"/root/lib/modules/*
	[ $# -eq 1 ] && [ -d "$1" ] || die "$deb: expected exactly one lib/modules/VERSION"
	kver=$(basename "$1")
	set -- "$tmp"/root/boot/vmlinuz-*
	[ -f "$1" ] || die "$deb has no boot/vmlinuz-*"
	mkdir -p "$tmp/cache/modules"
	cp "$1" "$tmp/cache/vmlinuz"
	echo "$kver" >"$tmp/cache/version"

	"$busybox" depmod -b "$tmp/root" "$kver" || die "depmod failed"
	# modules.dep lines are "path: dep dep ...", dependencies already
	# transitive; module names compare with '-' and '_' as equals.
	wanted=$(echo "$modlist" | tr '-' '_')
	files=$(awk -v wanted="$wanted" '
		BEGIN { n = split(wanted, w, " "); for (i = 1; i <= n; i++) want[w[i]] = 1 }
		{
			path = $1; sub(/:$/, "", path)
			name = path; sub(/.*\//, "", name); sub(/\.ko$/, "", name); gsub(/-/, "_", name)
			if (name in want) { found[name] = 1; for (i = 1; i <= NF; i++) { p = $i; sub(/:$/, "", p); print p } }
		}
		END { for (m in want) if (!(m in found)) print "MISSING " m }
	' "$tmp/root/lib/modules/$kver/modules.dep" | sort -u)
	case "$files" in *MISSING*) die "modules not in $deb: $(echo "$files" | grep MISSING | tr '\n' ' ')" ;; esac
	for f in $files; do
		mkdir -p "$tmp/cache/modules/$(dirname "$f")"
		cp "$tmp/root/lib/modules/$kver/$f" "$tmp/cache/modules/$f"
	done
	echo "$modlist" >"$tmp/cache/done"
	rm -rf "$kcache"
	mv "$tmp/cache" "$kcache"
	rm -rf "$tmp"
	trap - EXIT
fi
kver=$(cat "$kcache/version")

# --- initramfs ---------------------------------------------------------------

# /dev/console comes from the kernel's built-in initramfs (it is unpacked
# before ours), so no device nodes (and no root) are needed here.
stage=$(mktemp -d "$outdir/.initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/lib/modules/$kver"
cp "$busybox" "$stage/bin/busybox"
for applet in $APPLETS; do
	ln -s busybox "$stage/bin/$applet"
done
cp "$vmpattern" "$stage/bin/vmpattern"
# More static guest programs (e.g. hxfr-probe), run with vmpattern.run=NAME.
for extra in ${TEST_VM_EXTRA_BINS:-}; do
	is_static_elf "$extra" || die "$extra is not a static binary"
	cp "$extra" "$stage/bin/$(basename "$extra")"
	chmod 755 "$stage/bin/$(basename "$extra")"
done
cp "$srcdir/guest/init" "$stage/init"
chmod 755 "$stage/init" "$stage/bin/vmpattern" "$stage/bin/busybox"
cp -R "$kcache/modules/." "$stage/lib/modules/$kver/"
"$busybox" depmod -b "$stage" "$kver" || die "depmod for the initramfs failed"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --quiet | gzip -n -6) >"$outdir/.initramfs.cpio.gz.tmp" ||
	die "packing the initramfs failed"
cp "$kcache/vmlinuz" "$outdir/.vmlinuz.tmp"
mv "$outdir/.initramfs.cpio.gz.tmp" "$outdir/initramfs.cpio.gz"
mv "$outdir/.vmlinuz.tmp" "$outdir/vmlinuz"
note "built $outdir/vmlinuz and $outdir/initramfs.cpio.gz (kernel $kver)"
